#include "cli/bpf/cluster.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>
#include <thread>

#include "cli/command.hpp"
#include "weft/bpf_abi.h"
#include "weft/node/abi.hpp"
#include "weft/node/enum_names.hpp"
#include "weft/unique_fd.hpp"

namespace weft::cli::bpf {

namespace {

namespace fs = std::filesystem;

// An agent answers within this (it serves one client at a time, quickly).
constexpr std::chrono::milliseconds kAgentTimeout{1000};
// At most this many agents are asked while looking for a pin root.
constexpr size_t kMaxAgentsScanned = 64;

HintSource& Hints() {
  static HintSource source;
  return source;
}

std::string NetnsPath(const std::string& ns) { return ns.empty() || ns[0] == '/' ? ns : "/run/netns/" + ns; }

// The same directory, however spelled ("/sys/fs/bpf/weft/", a relative path).
bool SamePath(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  auto ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  return ea || eb ? a == b : ca == cb;
}

// The running agents under a state dir: <dir>/<node>/agent.sock that answer.
std::map<std::string, node::AgentInfo> AgentsUnder(const std::string& state_dir) {
  std::map<std::string, node::AgentInfo> out;
  std::error_code ec;
  size_t asked = 0;
  for (const auto& e : fs::directory_iterator(state_dir, ec)) {
    const std::string node = e.path().filename();
    if (!node::CheckNodeComponent(node).ok()) continue;
    const std::string sock = node::StatePaths(state_dir, node).admin_socket;
    struct stat st {};
    if (::lstat(sock.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (++asked > kMaxAgentsScanned) break;
    if (auto info = node::QueryAgent(sock, kAgentTimeout); info.ok()) out[node] = std::move(*info);
  }
  return out;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    prev.swap(cur);
  }
  return prev[b.size()];
}

Pod* FindPodMut(std::vector<Pod>& pods, const std::string& ns, const std::string& name) {
  for (auto& p : pods)
    if (p.name == name && (p.ns == ns || p.ns.empty() || ns.empty())) return &p;
  return nullptr;
}

// The netns in which every endpoint's ifindex carries its ifname; "" unless
// exactly one namespace under /run/netns fits.
std::string DetectNodeNetns(const node::NodeNames& names) {
  std::vector<std::pair<uint32_t, std::string>> want;
  for (const auto& e : names.endpoints)
    if (e.ifindex && !e.ifname.empty()) want.emplace_back(e.ifindex, e.ifname);
  if (want.empty()) return "";
  std::vector<std::string> candidates, found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) candidates.push_back(e.path().string());
  std::sort(candidates.begin(), candidates.end());
  std::thread t([&] {
    for (const auto& c : candidates) {
      UniqueFd fd(open(c.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd || setns(fd.get(), CLONE_NEWNET) != 0) continue;
      bool all = true;
      for (const auto& [idx, name] : want) {
        char buf[IF_NAMESIZE] = {};
        if (!if_indextoname(idx, buf) || name != buf) {
          all = false;
          break;
        }
      }
      if (all) found.push_back(c);
    }
  });  // the thread ends in whatever netns it reached: it exits right away
  t.join();
  return found.size() == 1 ? found[0] : "";
}

}  // namespace

Status InNetns(const std::string& netns_path, const std::function<Status()>& fn) {
  UniqueFd target(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) return Status::Errno("open network namespace " + netns_path, errno);
  Status result;
  std::thread t([&] {
    if (setns(target.get(), CLONE_NEWNET) != 0) {
      result = Status::Errno("enter network namespace " + netns_path + " (setns)", errno);
      return;
    }
    result = fn();
  });
  t.join();
  return result;
}

void SetHintSource(HintSource source) { Hints() = std::move(source); }

std::optional<Failure> ResolveNodes(const ClusterOptions& o, Cluster* c) {
  // The environment's hints: the one named, else the one running (with
  // --pin-root: the one whose pin root it is).
  const HintSource& hs = Hints();
  if (!o.lab.empty()) {
    if (!hs.named) return Failure{kExitBadInput, "--lab " + o.lab + ": this weftctl has no lab support"};
    auto h = hs.named(o.lab);
    if (!h.ok()) return Failure{kExitBadInput, "--lab " + o.lab + ": " + h.status().message()};
    c->hints = std::move(*h);
  } else if (hs.running) {
    auto running = hs.running();
    if (o.pin_root.empty() && running.size() == 1) c->hints = std::move(running[0]);
    if (!o.pin_root.empty())
      for (auto& h : running)
        if (h.pin_root == o.pin_root) c->hints = std::move(h);
  }
  c->state_dir = !o.state_dir.empty()                           ? o.state_dir
                 : c->hints && !c->hints->agents_state_dir.empty() ? c->hints->agents_state_dir
                                                                   : node::kDefaultStateDir;
  if (!o.pin_root.empty()) {
    c->pin_root = o.pin_root;
    c->source = "--pin-root";
  } else if (c->hints) {
    c->pin_root = c->hints->pin_root;
    c->source = c->hints->source;
  } else {
    // The running agents say where their pins are (one pin root for all of them).
    auto agents = AgentsUnder(c->state_dir);
    std::set<std::string> roots;
    for (const auto& [node, a] : agents) roots.insert(a.pin_root);
    if (roots.size() == 1) {
      c->pin_root = *roots.begin();
      c->source = "agent" + std::string(agents.size() > 1 ? "s" : " of node " + agents.begin()->first) + " in " +
                  c->state_dir;
    } else {
      c->pin_root = node::kDefaultPinRoot;
      c->source = "default";
    }
  }
  std::error_code ec;
  if (!fs::is_directory(c->pin_root, ec))
    return Failure{kExitEnv, "pin root " + c->pin_root + " (" + c->source + "): " +
                                 (ec ? ec.message() : "no such directory") +
                                 (geteuid() != 0 ? " (not root: bpffs is readable by root only)" : "")};
  std::vector<std::string> present = node::NodesUnder(c->pin_root);
  if (!o.node.empty()) {
    if (std::find(present.begin(), present.end(), o.node) == present.end()) {
      std::string have;
      for (const auto& n : present) have += (have.empty() ? "" : ", ") + n;
      return Failure{kExitBadInput, "node " + o.node + ": no " + c->MapsDir(o.node) + " (nodes under " + c->pin_root +
                                        ": " + (have.empty() ? "none" : have) + ")"};
    }
    c->nodes = {o.node};
  } else if (c->hints && o.pin_root.empty()) {
    for (const auto& n : c->hints->nodes)
      if (std::find(present.begin(), present.end(), n) != present.end()) c->nodes.push_back(n);
  } else {
    c->nodes = present;
  }
  if (c->nodes.empty())
    return Failure{kExitEnv, "no node under " + c->pin_root + " (" + c->source + ") has pinned maps (<node>/maps/)"};

  // Each node's agent, if one runs: it answers on its admin socket.
  for (const auto& node : c->nodes) {
    const std::string sock = node::StatePaths(c->state_dir, node).admin_socket;
    auto info = node::QueryAgent(sock, kAgentTimeout);
    if (!info.ok()) {
      if (info.status().err() != ECONNREFUSED && info.status().err() != ENOENT)  // else: not running
        c->warnings.push_back("node " + node + ": its agent: " + info.status().message());
      continue;
    }
    if (!SamePath(info->pin_root, c->pin_root)) {
      c->warnings.push_back("node " + node + ": the agent on " + sock + " pins under " + info->pin_root + ", not " +
                            c->pin_root + ": not used");
      continue;
    }
    if (info->abi_version != WEFT_ABI_VERSION)
      c->warnings.push_back("node " + node + ": its agent runs ABI " + std::to_string(info->abi_version) +
                            ", this weftctl decodes ABI " + std::to_string(WEFT_ABI_VERSION) +
                            ": values may be misread (use the agent's weftctl)");
    c->agents[node] = std::move(*info);
  }
  for (const auto& node : c->nodes) {
    if (c->agents.count(node)) continue;
    auto abi = node::ReadPinnedAbi(c->MapsDir(node));
    if (abi.ok() && abi->stamped && abi->version != WEFT_ABI_VERSION)
      c->warnings.push_back("node " + node + ": its maps are ABI " + std::to_string(abi->version) +
                            ", this weftctl decodes ABI " + std::to_string(WEFT_ABI_VERSION) + ": values may be misread");
  }
  return std::nullopt;
}

std::optional<Failure> LoadCluster(const ClusterOptions& o, Cluster* c) {
  if (auto f = ResolveNodes(o, c)) return f;

  // Network namespaces of the nodes: the hints', then what the agents say,
  // then --netns; the rest are found by their endpoints' veths (below).
  if (c->hints)
    for (const auto& [node, ns] : c->hints->netns)
      if (!ns.empty()) c->netns[node] = NetnsPath(ns);
  for (const auto& [node, a] : c->agents) c->netns[node] = a.PodNetnsPath();
  for (const auto& spec : o.netns) {
    auto eq = spec.find('=');
    if (eq == std::string::npos) {
      for (const auto& n : c->nodes) c->netns[n] = NetnsPath(spec);
    } else {
      c->netns[spec.substr(0, eq)] = NetnsPath(spec.substr(eq + 1));
    }
  }

  // names.json per node, next to its agent's socket.
  for (const auto& node : c->nodes) {
    const std::string path = node::StatePaths(c->state_dir, node).names;
    auto n = node::ReadNamesFile(path);
    if (!n.ok()) {
      c->warnings.push_back(
          "node " + node + ": " +
          (n.status().err() == ENOENT
               ? "no " + path + " (identities, policies and endpoints are shown by number; --state-dir names the agent's)"
               : n.status().message()));
      continue;
    }
    c->names[node] = std::move(*n);
  }

  // Pods: the hints', then the agents' endpoints (merged by ns/name).
  if (c->hints) {
    c->pods = c->hints->pods;
    c->services = c->hints->services;
  }
  for (const auto& [node, names] : c->names)
    for (const auto& e : names.endpoints) {
      std::string ns, name = e.workload;
      if (auto slash = e.workload.find('/'); slash != std::string::npos) {
        ns = e.workload.substr(0, slash);
        name = e.workload.substr(slash + 1);
      }
      Pod* p = FindPodMut(c->pods, ns, name);
      if (!p)  // e.g. the lab's "<pod>-v6" WorkloadEntry of a dual-stack pod: same pod, same veth
        for (const auto& a : e.addresses)
          if (auto ip = IpAddr::Parse(a); ip && !p)
            for (auto& q : c->pods)
              if (std::find(q.ips.begin(), q.ips.end(), *ip) != q.ips.end()) p = &q;
      if (!p) {
        c->pods.push_back(Pod{});
        p = &c->pods.back();
        p->name = name;
        p->ns = ns;
      }
      if (p->node.empty()) p->node = node;
      for (const auto& a : e.addresses)
        if (auto ip = IpAddr::Parse(a); ip && std::find(p->ips.begin(), p->ips.end(), *ip) == p->ips.end())
          p->ips.push_back(*ip);
      std::stable_sort(p->ips.begin(), p->ips.end(), [](const IpAddr& a, const IpAddr& b) {
        return a.is_v4() && !b.is_v4();
      });
      if (e.ifindex) p->host_ifindex = e.ifindex;
      if (!e.ifname.empty()) p->host_veth = e.ifname;
      if (e.identity) p->identity = e.identity;
      if (p->service_account.empty())
        if (const IdentityName* id = c->Identity(e.identity)) p->service_account = id->service_account;
    }

  // Nodes without a known netns: find the one where the endpoints' veths are.
  for (const auto& node : c->nodes) {
    if (c->netns.count(node) || !c->names.count(node)) continue;
    std::string ns = DetectNodeNetns(c->names[node]);
    if (!ns.empty()) c->netns[node] = ns;
  }
  return std::nullopt;
}

const IdentityName* Cluster::Identity(uint32_t id) const {
  for (const auto& [_, n] : names)
    if (auto it = n.identities.find(id); it != n.identities.end()) return &it->second;
  return nullptr;
}

const PolicyName* Cluster::Policy(uint32_t id) const {
  for (const auto& [_, n] : names)
    if (auto it = n.policies.find(id); it != n.policies.end()) return &it->second;
  return nullptr;
}

const Pod* Cluster::PodByIp(const IpAddr& ip) const {
  for (const auto& p : pods)
    if (std::find(p.ips.begin(), p.ips.end(), ip) != p.ips.end()) return &p;
  return nullptr;
}

const Pod* Cluster::FindPod(const std::string& text, bool* ambiguous) const {
  if (ambiguous) *ambiguous = false;
  const Pod* hit = nullptr;
  int n = 0;
  for (const auto& p : pods) {
    if (p.Qualified() == text) return &p;
    if (p.name == text) {
      hit = &p;
      ++n;
    }
  }
  if (n > 1) {
    if (ambiguous) *ambiguous = true;
    return nullptr;
  }
  return hit;
}

const Service* Cluster::FindService(const std::string& text) const {
  const Service* hit = nullptr;
  int n = 0;
  for (const auto& s : services) {
    if (s.Qualified() == text) return &s;
    if (s.name == text || s.name + "." + s.ns == text) {
      hit = &s;
      ++n;
    }
  }
  return n == 1 ? hit : nullptr;
}

const Service* Cluster::ServiceByVip(const IpAddr& vip) const {
  for (const auto& s : services)
    if (std::find(s.vips.begin(), s.vips.end(), vip) != s.vips.end()) return &s;
  return nullptr;
}

std::vector<const Pod*> Cluster::PodsOfIdentity(uint32_t identity) const {
  std::vector<const Pod*> out;
  const IdentityName* id = Identity(identity);
  for (const auto& p : pods) {
    bool match = p.identity != 0 ? p.identity == identity
                                 : id && !id->ns.empty() && p.ns == id->ns && p.service_account == id->service_account;
    if (match) out.push_back(&p);
  }
  return out;
}

std::vector<uint32_t> Cluster::IdentitiesOfSa(const std::string& text) const {
  std::set<uint32_t> out;
  for (const auto& [_, n] : names)
    for (const auto& [id, i] : n.identities)
      if (i.spiffe_id == text || (!i.ns.empty() && i.ns + "/" + i.service_account == text)) out.insert(id);
  return {out.begin(), out.end()};
}

std::vector<std::string> Cluster::Suggest(const std::string& text, bool want_pods, bool want_services,
                                          bool want_sas) const {
  std::set<std::string> known;
  if (want_pods)
    for (const auto& p : pods) known.insert(p.Qualified());
  if (want_services)
    for (const auto& s : services) known.insert(s.Qualified());
  if (want_sas)
    for (const auto& [_, n] : names)
      for (const auto& [id, i] : n.identities)
        if (!i.ns.empty()) known.insert(i.ns + "/" + i.service_account);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& k : known) {
    std::string bare = k.substr(k.find('/') + 1);
    size_t d = std::min(EditDistance(text, k), EditDistance(text, bare));
    bool sub = k.find(text) != std::string::npos || text.find(bare) != std::string::npos;
    if (sub || d <= std::max<size_t>(2, text.size() / 3)) scored.emplace_back(sub ? 0 : d, k);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (const auto& [d, k] : scored)
    if (out.size() < 5) out.push_back(k);
  if (out.empty())
    for (const auto& k : known)
      if (out.size() < 12) out.push_back(k);
  return out;
}

std::string IdentityLabel(const Cluster& c, uint32_t id) {
  std::string r = node::ReservedIdentityName(id);
  if (!r.empty()) return std::to_string(id) + " (" + r + ")";
  if (const IdentityName* n = c.Identity(id); n && !n->spiffe_id.empty()) return n->spiffe_id;
  return std::to_string(id);
}

}  // namespace weft::cli::bpf
