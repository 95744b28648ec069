#include "weft/node/paths.hpp"

#include <algorithm>
#include <filesystem>

namespace weft::node {

namespace fs = std::filesystem;

PinPaths::PinPaths(std::string root, std::string n)
    : pin_root(std::move(root)),
      node(std::move(n)),
      node_dir(pin_root + "/" + node),
      maps_dir(node_dir + "/maps"),
      links_dir(node_dir + "/links"),
      progs_dir(node_dir + "/progs"),
      tc_links_dir(node_dir + "/tc_links") {}

std::string TcxLinkName(uint32_t ifindex, bool ingress) {
  return "tcx_" + std::to_string(ifindex) + (ingress ? "_ingress" : "_egress");
}

std::string PinPaths::TcxLink(uint32_t ifindex, bool ingress) const {
  return tc_links_dir + "/" + TcxLinkName(ifindex, ingress);
}

StatePaths::StatePaths(std::string sd, std::string n)
    : state_dir(std::move(sd)),
      node(std::move(n)),
      dir(state_dir + "/" + node),
      names(dir + "/names.json"),
      applied(dir + "/applied.json"),
      admin_socket(dir + "/agent.sock"),
      credentials(dir + "/credentials") {}

Status CheckNodeComponent(std::string_view node) {
  if (node.empty() || node.find('/') != std::string_view::npos || node == "." || node == "..")
    return Status::Error("node name '" + std::string(node) + "': must be non-empty and contain no '/'", EINVAL);
  return Status::Ok();
}

std::vector<std::string> NodesUnder(const std::string& pin_root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pin_root, ec))
    if (fs::is_directory(e.path() / "maps", ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace weft::node
