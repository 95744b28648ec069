#include "cli/lab/net.hpp"

#include <filesystem>

#include "weft/sys.hpp"

namespace weft::cli::lab::net {

Status Ip(const std::string& ns, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip", "-n", ns};
  argv.insert(argv.end(), args.begin(), args.end());
  return sys::Run(argv);
}

bool NetnsExists(const std::string& ns) {
  std::error_code ec;
  return std::filesystem::exists("/run/netns/" + ns, ec);
}

std::vector<std::string> ListNetns() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec))
    out.push_back(e.path().filename().string());
  return out;
}

Status Sysctl(const std::string& ns, const std::vector<std::string>& kvs) {
  std::vector<std::string> argv = {"nsenter", "--net=/run/netns/" + ns, "sysctl", "-qw"};
  argv.insert(argv.end(), kvs.begin(), kvs.end());
  return sys::Run(argv).Wrap("sysctl in netns " + ns);
}

Status AddNetns(const std::string& ns) {
  WEFT_RETURN_IF_ERROR(sys::Run({"ip", "netns", "add", ns}));
  WEFT_RETURN_IF_ERROR(Ip(ns, {"link", "set", "lo", "up"}));
  return Sysctl(ns, {"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"});
}

Status DelNetns(const std::string& ns) {
  if (!NetnsExists(ns)) return Status::Ok();
  return sys::Run({"ip", "netns", "del", ns});
}

Status AddVeth(const std::string& ns_a, const std::string& a, const std::string& ns_b, const std::string& b) {
  return Ip(ns_a, {"link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b});
}

}  // namespace weft::cli::lab::net
