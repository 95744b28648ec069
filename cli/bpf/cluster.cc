#include "cli/bpf/cluster.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cli/command.hpp"
#include "weft/bpf_abi.h"
#include "weft/unique_fd.hpp"

namespace weft::cli::bpf {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/weft";
constexpr const char* kDefaultStateDir = "/run/weft/agent";

std::vector<lab::LabState> RunningLabs() {
  std::vector<lab::LabState> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/weft/lab", ec)) {
    auto st = lab::LoadState(e.path().filename());
    if (st.ok() && st->phase != "down") out.push_back(std::move(*st));
  }
  return out;
}

std::vector<std::string> NodesUnder(const std::string& pin_root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pin_root, ec))
    if (fs::is_directory(e.path() / "maps", ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

std::string NetnsPath(const std::string& ns) { return ns.empty() || ns[0] == '/' ? ns : "/run/netns/" + ns; }

// `--state-dir` from a running agent's command line (the lab passes its own).
std::string StateDirOfAgent(pid_t pid) {
  if (pid <= 0) return "";
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  std::string cur;
  for (char ch : all) {
    if (ch == '\0') {
      argv.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--state-dir" && i + 1 < argv.size()) return argv[i + 1];
    if (argv[i].rfind("--state-dir=", 0) == 0) return argv[i].substr(12);
  }
  return "";
}

// <dir>/**/<node>/names.json, at most three levels below dir.
std::string FindNamesUnder(const std::string& dir, const std::string& node) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() > 3) {
      it.disable_recursion_pending();
      continue;
    }
    const fs::path& p = it->path();
    if (p.filename() == "names.json" && p.parent_path().filename() == node) return p.string();
  }
  return "";
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
std::string DetectNodeNetns(const AgentNames& names) {
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

Result<AgentNames> LoadAgentNames(const std::string& path, const std::string& node) {
  std::ifstream in(path);
  if (!in) return Status::Errno("read " + path, errno);
  Json j = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Error("parse " + path + ": not a JSON object");
  AgentNames n;
  n.path = path;
  auto str = [](const Json& o, const char* k) {
    return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
  };
  auto num = [](const Json& o, const char* k) -> uint32_t {
    return o.contains(k) && o[k].is_number_unsigned() ? o[k].get<uint32_t>() : 0;
  };
  auto strs = [](const Json& o, const char* k) {
    std::vector<std::string> v;
    if (o.contains(k) && o[k].is_array())
      for (const auto& x : o[k])
        if (x.is_string()) v.push_back(x);
    return v;
  };
  if (j.contains("version") && j["version"].is_number_unsigned()) n.version = j["version"].get<uint64_t>();
  if (j.contains("identities") && j["identities"].is_array())
    for (const auto& i : j["identities"]) {
      if (!i.is_object()) continue;
      IdentityName x{num(i, "id"), str(i, "spiffe_id"), str(i, "namespace"), str(i, "service_account"),
                     strs(i, "cidrs")};
      if (x.id) n.identities[x.id] = x;
    }
  if (j.contains("policies") && j["policies"].is_array())
    for (const auto& p : j["policies"]) {
      if (!p.is_object()) continue;
      PolicyName x{num(p, "id"), str(p, "name"), str(p, "action")};
      if (x.id) n.policies[x.id] = x;
    }
  if (j.contains("endpoints") && j["endpoints"].is_array())
    for (const auto& e : j["endpoints"]) {
      if (!e.is_object()) continue;
      EndpointName x;
      x.node = node;
      x.workload = str(e, "workload");
      x.ifindex = num(e, "ifindex");
      x.ifname = str(e, "ifname");
      x.ep_id = num(e, "ep_id");
      x.identity = num(e, "identity");
      x.addresses = strs(e, "addresses");
      x.enforce_ingress = e.contains("enforce_ingress") && e["enforce_ingress"].is_boolean() &&
                          e["enforce_ingress"].get<bool>();
      if (e.contains("policies") && e["policies"].is_array())
        for (const auto& p : e["policies"])
          if (p.is_number_unsigned()) x.policies.push_back(p.get<uint32_t>());
      n.endpoints.push_back(std::move(x));
    }
  return n;
}

std::optional<Failure> LoadCluster(const ClusterOptions& o, Cluster* c) {
  if (!o.lab.empty()) {
    auto st = lab::LoadState(o.lab);
    if (!st.ok()) return Failure{kExitBadInput, "--lab " + o.lab + ": " + st.status().message()};
    c->lab = std::move(*st);
  } else if (o.pin_root.empty()) {
    auto labs = RunningLabs();
    if (labs.size() == 1) c->lab = std::move(labs[0]);
  } else {
    for (auto& l : RunningLabs())
      if (l.pin_root == o.pin_root) c->lab = std::move(l);
  }
  if (!o.pin_root.empty()) {
    c->pin_root = o.pin_root;
    c->source = "--pin-root";
  } else if (c->lab) {
    c->pin_root = c->lab->pin_root;
    c->source = "lab " + c->lab->lab;
  } else {
    c->pin_root = kDefaultPinRoot;
    c->source = "default";
  }
  std::error_code ec;
  if (!fs::is_directory(c->pin_root, ec))
    return Failure{kExitEnv, "pin root " + c->pin_root + " (" + c->source + "): " +
                                 (ec ? ec.message() : "no such directory") +
                                 (geteuid() != 0 ? " (not root: bpffs is readable by root only)" : "")};
  std::vector<std::string> present = NodesUnder(c->pin_root);
  if (!o.node.empty()) {
    if (std::find(present.begin(), present.end(), o.node) == present.end()) {
      std::string have;
      for (const auto& n : present) have += (have.empty() ? "" : ", ") + n;
      return Failure{kExitBadInput, "node " + o.node + ": no " + c->MapsDir(o.node) + " (nodes under " + c->pin_root +
                                        ": " + (have.empty() ? "none" : have) + ")"};
    }
    c->nodes = {o.node};
  } else if (c->lab && o.pin_root.empty()) {
    for (const auto& n : c->lab->nodes)
      if (std::find(present.begin(), present.end(), n.name) != present.end()) c->nodes.push_back(n.name);
  } else {
    c->nodes = present;
  }
  if (c->nodes.empty())
    return Failure{kExitEnv, "no node under " + c->pin_root + " (" + c->source + ") has pinned maps (<node>/maps/)"};

  // Network namespaces of the nodes.
  if (c->lab)
    for (const auto& n : c->lab->nodes)
      if (!n.netns.empty()) c->netns[n.name] = NetnsPath(n.netns);
  for (const auto& spec : o.netns) {
    auto eq = spec.find('=');
    if (eq == std::string::npos) {
      for (const auto& n : c->nodes) c->netns[n] = NetnsPath(spec);
    } else {
      c->netns[spec.substr(0, eq)] = NetnsPath(spec.substr(eq + 1));
    }
  }

  // names.json per node.
  for (const auto& node : c->nodes) {
    std::string path;
    if (!o.state_dir.empty()) {
      path = o.state_dir + "/" + node + "/names.json";
    } else if (c->lab) {
      std::string dir;
      for (const auto& n : c->lab->nodes)
        if (n.name == node) dir = StateDirOfAgent(n.agent.pid);
      path = !dir.empty() ? dir + "/" + node + "/names.json" : FindNamesUnder(c->lab->state_dir, node);
      if (path.empty()) path = std::string(kDefaultStateDir) + "/" + node + "/names.json";
    } else {
      path = std::string(kDefaultStateDir) + "/" + node + "/names.json";
    }
    if (!fs::exists(path, ec)) {
      c->warnings.push_back("node " + node + ": no " + path +
                            " (identities, policies and endpoints are shown by number; --state-dir names the agent's)");
      continue;
    }
    auto n = LoadAgentNames(path, node);
    if (!n.ok()) {
      c->warnings.push_back("node " + node + ": " + n.status().message());
      continue;
    }
    c->names[node] = std::move(*n);
  }

  // Pods: the lab's, then the agents' endpoints (merged by ns/name).
  if (c->lab) {
    for (const auto& p : c->lab->pods) {
      Pod pod;
      pod.name = p.name;
      pod.ns = p.ns;
      pod.node = p.node;
      if (auto a = IpAddr::Parse(p.ip)) pod.ips.push_back(*a);
      if (auto a = IpAddr::Parse(p.ip6)) pod.ips.push_back(*a);
      pod.netns = NetnsPath(p.netns);
      pod.host_veth = p.node_veth;
      pod.service_account = p.service_account;
      pod.ports = p.ports;
      c->pods.push_back(std::move(pod));
    }
    for (const auto& s : c->lab->services) {
      Service svc{s.name, s.ns, {}};
      for (const auto& v : s.vips)
        if (auto a = IpAddr::Parse(v)) svc.vips.push_back(*a);
      c->services.push_back(std::move(svc));
    }
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

std::string ReservedIdentityName(uint32_t id) {
  switch (id) {
    case WEFT_IDENTITY_ANY:
      return "any";
    case WEFT_IDENTITY_UNKNOWN:
      return "unknown";
    case WEFT_IDENTITY_WORLD:
      return "world";
    case WEFT_IDENTITY_HOST:
      return "host";
    default:
      return "";
  }
}

std::string IdentityLabel(const Cluster& c, uint32_t id) {
  std::string r = ReservedIdentityName(id);
  if (!r.empty()) return std::to_string(id) + " (" + r + ")";
  if (const IdentityName* n = c.Identity(id); n && !n->spiffe_id.empty()) return n->spiffe_id;
  return std::to_string(id);
}

}  // namespace weft::cli::bpf
