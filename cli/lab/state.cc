#include "cli/lab/state.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace weft::cli::lab {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ServiceVips, name, ns, vips)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AgentState, pid, metrics, log)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ControllerState, pid, listen, admin_socket, data_dir, log)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NodeState, name, index, netns, cgroup, pod_cidr, pod_cidr6, fabric_ip,
                                                fabric_ip6, fabric_if, fabric_peer, agent)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PodState, name, deployment, replica, ns, node, netns, cgroup, ip, ip6,
                                                node_veth, pod_veth, hosts, pid, log, ports, port_names, labels,
                                                service_account, serving)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LabState, version, lab, phase, state_dir, spec_file, cgroup_root,
                                                pin_root, agent_bin, echo_bin, controller_bin, agent_args, controller, dual_stack, fabric_netns, bridge, nodes,
                                                pods, services)

const PodState* LabState::FindPod(const std::string& name) const {
  for (const auto& p : pods)
    if (p.name == name) return &p;
  return nullptr;
}

NodeState* LabState::FindNode(const std::string& name) {
  for (auto& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

std::string StateDir(const std::string& lab) { return "/run/weft/lab/" + lab; }
std::string ControllerDir(const std::string& lab) { return StateDir(lab) + "/controller"; }

std::string AgentsStateDir(const LabState& st) {
  std::string dir = st.state_dir + "/agents";
  for (size_t i = 0; i < st.agent_args.size(); ++i) {  // the last one wins, as for the agent's parser
    const std::string& a = st.agent_args[i];
    if (a == "--state-dir" && i + 1 < st.agent_args.size()) dir = st.agent_args[i + 1];
    if (a.rfind("--state-dir=", 0) == 0) dir = a.substr(12);
  }
  return dir;
}

Result<LabState> LoadState(const std::string& lab) {
  std::string path = StateDir(lab) + "/state.json";
  std::ifstream in(path);
  if (!in) return Status::Error("read " + path + ": " + std::strerror(errno), errno);
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    return j.get<LabState>();
  } catch (const nlohmann::json::exception& e) {
    return Status::Error("parse " + path + ": " + e.what());
  }
}

std::string StateToJson(const LabState& st, int indent) { return nlohmann::json(st).dump(indent); }

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::Errno("write " + tmp, errno);
    out << content;
    out.flush();
    if (!out) return Status::Errno("write " + tmp, errno);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::filesystem::remove(tmp, ec);
    return Status::Errno("rename " + tmp + " to " + path, err);
  }
  return Status::Ok();
}

Status SaveState(const LabState& st) { return WriteFileAtomic(st.path(), StateToJson(st) + "\n"); }

}  // namespace weft::cli::lab
