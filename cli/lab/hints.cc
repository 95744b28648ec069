// The lab as a source of hints for weftctl bpf/flows/trace (cli/bpf/cluster.hpp):
// what its state.json knows about its nodes, pods and services. The lab
// depends on those commands, not the reverse.
#include <filesystem>

#include "cli/bpf/cluster.hpp"
#include "cli/lab/lab.hpp"
#include "cli/lab/state.hpp"

namespace weft::cli::lab {

namespace {

bpf::ClusterHints HintsOf(const LabState& st) {
  bpf::ClusterHints h;
  h.source = "lab " + st.lab;
  h.pin_root = st.pin_root;
  h.agents_state_dir = AgentsStateDir(st);
  for (const auto& n : st.nodes) {
    h.nodes.push_back(n.name);
    if (!n.netns.empty()) h.netns[n.name] = n.netns;
  }
  for (const auto& p : st.pods) {
    bpf::Pod pod;
    pod.name = p.name;
    pod.ns = p.ns;
    pod.node = p.node;
    if (auto a = IpAddr::Parse(p.ip)) pod.ips.push_back(*a);
    if (auto a = IpAddr::Parse(p.ip6)) pod.ips.push_back(*a);
    pod.netns = p.netns.empty() || p.netns[0] == '/' ? p.netns : "/run/netns/" + p.netns;
    pod.host_veth = p.node_veth;
    pod.service_account = p.service_account;
    pod.ports = p.ports;
    h.pods.push_back(std::move(pod));
  }
  for (const auto& s : st.services) {
    bpf::Service svc{s.name, s.ns, {}};
    for (const auto& v : s.vips)
      if (auto a = IpAddr::Parse(v)) svc.vips.push_back(*a);
    h.services.push_back(std::move(svc));
  }
  return h;
}

}  // namespace

void RegisterHints() {
  bpf::HintSource src;
  src.named = [](const std::string& name) -> Result<bpf::ClusterHints> {
    auto st = LoadState(name);
    if (!st.ok()) return st.status();
    return HintsOf(*st);
  };
  src.running = [] {
    std::vector<bpf::ClusterHints> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/weft/lab", ec)) {
      auto st = LoadState(e.path().filename());
      if (st.ok() && st->phase != "down") out.push_back(HintsOf(*st));
    }
    return out;
  };
  bpf::SetHintSource(std::move(src));
}

}  // namespace weft::cli::lab
