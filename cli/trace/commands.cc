// `weftctl trace`: see trace.hpp and README.md.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "cli/bpf/cluster.hpp"
#include "cli/bpf/decode.hpp"
#include "cli/bpf/live.hpp"
#include "cli/command.hpp"
#include "cli/trace/test_run.hpp"
#include "cli/trace/trace.hpp"
#include "weft/bpf_abi.h"
#include "weft/node/enum_names.hpp"
#include "weft/node/lookup.hpp"
#include "weft/unique_fd.hpp"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace weft::cli::trace {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using bpf::Cluster;
using bpf::Failure;
using bpf::Pod;

struct Options {
  bpf::ClusterOptions cluster;
  std::string from, to, proto = "tcp", output = "table";
  bool v6 = false;
};

// A failure that ends the command with its exit code.
struct Abort {
  Failure f;
};

std::string Join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string HostPort(const IpAddr& ip, uint16_t port) {
  return (ip.is_v4() ? ip.ToString() : "[" + ip.ToString() + "]") + ":" + std::to_string(port);
}

Json JsonOr(const std::string& s) { return s.empty() ? Json() : Json(s); }

std::string PolicyName(const Cluster& c, uint32_t id) {
  if (id == 0) return "";
  const bpf::PolicyName* p = c.Policy(id);
  return p && !p->name.empty() ? p->name : "#" + std::to_string(id);
}

Json PolicyJson(const Cluster& c, uint32_t id) {
  const bpf::PolicyName* p = id ? c.Policy(id) : nullptr;
  return {{"id", id}, {"name", p ? JsonOr(p->name) : Json()}, {"action", p ? JsonOr(p->action) : Json()}};
}

Json IdentityJson(const Cluster& c, uint32_t id, bool found) {
  const bpf::IdentityName* n = c.Identity(id);
  return {{"id", id},
          {"in_cache", found},
          {"spiffe_id", n ? JsonOr(n->spiffe_id) : Json()},
          {"reserved", JsonOr(node::ReservedIdentityName(id))}};
}

// ---- inputs -------------------------------------------------------------------
struct Destination {
  std::string input;
  std::string kind;  // "service", "pod", "address"
  const bpf::Service* service = nullptr;
  const Pod* pod = nullptr;
  IpAddr ip;  // VIP or pod/address IP, of the trace's family
  uint16_t port = 0;
};

Failure UnknownName(const Cluster& c, const std::string& flag, const std::string& text, bool services) {
  auto close = c.Suggest(text, true, services, false);
  std::string msg = flag + " " + text + ": no pod" + (services ? " or service" : "") + " of that name";
  if (!close.empty()) msg += " (known: " + Join(close) + ")";
  if (c.pods.empty()) msg += "; no pods are known (no lab state and no names.json: pass --lab or --state-dir)";
  return Failure{kExitBadInput, msg};
}

const Pod* ResolvePod(const Cluster& c, const std::string& flag, const std::string& text, bool services) {
  bool ambiguous = false;
  const Pod* p = c.FindPod(text, &ambiguous);
  if (p) return p;
  if (ambiguous) {
    std::vector<std::string> all;
    for (const auto& q : c.pods)
      if (q.name == text) all.push_back(q.Qualified());
    throw Abort{{kExitBadInput, flag + " " + text + ": several pods of that name, say which: " + Join(all)}};
  }
  if (!services) throw Abort{UnknownName(c, flag, text, false)};
  return nullptr;
}

std::optional<IpAddr> FamilyIp(const std::vector<IpAddr>& ips, bool v6) {
  for (const auto& ip : ips)
    if (ip.is_v4() != v6) return ip;
  return std::nullopt;
}

Destination ParseDestination(const Cluster& c, const std::string& text, bool v6) {
  Destination d;
  d.input = text;
  std::string name = text, port;
  if (!text.empty() && text[0] == '[') {  // [v6]:port
    auto close = text.find(']');
    if (close == std::string::npos) throw Abort{{kExitBadInput, "--to " + text + ": missing ']'"}};
    name = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') throw Abort{{kExitBadInput, "--to " + text + ": expected :PORT after ']'"}};
      port = text.substr(close + 2);
    }
  } else if (auto colon = text.rfind(':'); colon != std::string::npos && text.find(':') == colon) {
    name = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (!port.empty()) {
    char* end = nullptr;
    unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end || p == 0 || p > 65535)
      throw Abort{{kExitBadInput, "--to " + text + ": port " + port + " is not a number in 1..65535"}};
    d.port = static_cast<uint16_t>(p);
  }
  if (auto ip = IpAddr::Parse(name)) {
    d.ip = *ip;
    if ((d.service = c.ServiceByVip(*ip))) d.kind = "service";
    else if ((d.pod = c.PodByIp(*ip))) d.kind = "pod";
    else d.kind = "address";
    return d;
  }
  if (const Pod* p = ResolvePod(c, "--to", name, true)) {
    d.kind = "pod";
    d.pod = p;
    auto ip = FamilyIp(p->ips, v6);
    if (!ip) throw Abort{{kExitBadInput, "--to " + text + ": pod " + p->Qualified() + " has no IPv" + (v6 ? "6" : "4") + " address"}};
    d.ip = *ip;
    if (!d.port && p->ports.size() == 1) d.port = static_cast<uint16_t>(p->ports[0]);
    if (!d.port) {
      std::vector<std::string> ports;
      for (int x : p->ports) ports.push_back(std::to_string(x));
      throw Abort{{kExitBadInput, "--to " + text + ": say which port (POD:PORT)" +
                                      (ports.empty() ? "" : "; the pod's ports: " + Join(ports))}};
    }
    return d;
  }
  if (const bpf::Service* s = c.FindService(name)) {
    d.kind = "service";
    d.service = s;
    auto ip = FamilyIp(s->vips, v6);
    if (!ip)
      throw Abort{{kExitBadInput, "--to " + text + ": service " + s->Qualified() + " has no IPv" + (v6 ? "6" : "4") +
                                      " VIP (headless or single-stack)"}};
    d.ip = *ip;
    return d;
  }
  throw Abort{UnknownName(c, "--to", name, true)};
}

// The host-side veth ifindex of a pod: names.json, else its veth name in the node's netns.
uint32_t HostIfindex(const Cluster& c, const Pod& p, std::vector<std::string>* notes) {
  if (p.host_ifindex) return p.host_ifindex;
  if (p.host_veth.empty() || p.node.empty()) return 0;
  auto ns = c.netns.find(p.node);
  if (ns == c.netns.end()) return 0;
  uint32_t idx = 0;
  Status st = bpf::InNetns(ns->second, [&] {
    idx = if_nametoindex(p.host_veth.c_str());
    return idx ? Status::Ok() : Status::Errno("if_nametoindex " + p.host_veth, errno);
  });
  if (!st.ok()) notes->push_back("pod " + p.Qualified() + ": host veth: " + st.message());
  return idx;
}

// ---- (c) the policy walk ---------------------------------------------------------
struct PolicyTry {
  uint32_t peer = 0;
  uint16_t port = 0;
  bool looked_up = false;  // false: an earlier entry decided
  bool hit = false;
  weft_policy_val val{};
};

struct Walk {
  std::string where;  // "egress at ns/pod" / "ingress at ns/pod"
  std::string node;
  uint32_t ifindex = 0;
  bool known = false;      // node + ifindex known
  bool endpoint = false;   // in weft_endpoints
  weft_endpoint ep{};
  bool enforced = false;   // this direction
  uint32_t peer = WEFT_IDENTITY_UNKNOWN;
  bool peer_found = false;
  std::vector<PolicyTry> tries;
  uint8_t verdict = WEFT_VERDICT_NONE;  // NONE: no program decision (pass)
  uint8_t reason = WEFT_DROP_NONE;
  uint32_t policy_id = 0;
  uint8_t stage = WEFT_TRACE_STAGE_NONE;
  std::string note;
};

// The endpoint's source addresses (source validation), as the trace shows them.
std::vector<std::string> EndpointAddrs(const weft_endpoint& ep) {
  std::vector<std::string> out;
  for (uint32_t i = 0; i < ep.n_addrs && i < WEFT_EP_MAX_ADDRS; ++i)
    out.push_back(IpAddr::FromBytes(ep.addrs[i]).ToString());
  return out;
}

// own_ip: egress, the packet's source (checked against the endpoint's
// addresses first, as weft_tc_from_pod does; the exemptions of
// bpf/lib/source.h are for addresses a traced pod never sends from).
Walk WalkPolicy(const Cluster& c, const std::string& where, const std::string& node, uint32_t ifindex,
                const IpAddr& peer_ip, uint16_t port, uint8_t proto, uint8_t dir, const IpAddr* own_ip = nullptr) {
  Walk w;
  w.where = where;
  w.node = node;
  w.ifindex = ifindex;
  if (node.empty() || ifindex == 0) {
    w.note = "host veth unknown (not in names.json or the lab state): no TC program known on this side";
    return w;
  }
  w.known = true;
  const std::string dir_path = c.MapsDir(node);
  auto ep = bpf::EndpointOf(dir_path, ifindex);
  if (!ep.ok()) throw Abort{{kExitEnv, "node " + node + ": " + ep.status().message()}};
  if (!ep->has_value()) {
    w.stage = WEFT_TRACE_STAGE_NO_ENDPOINT;
    w.note = "ifindex " + std::to_string(ifindex) + " is not in weft_endpoints of node " + node + ": passes";
    return w;
  }
  w.endpoint = true;
  w.ep = **ep;
  if (dir == WEFT_DIR_EGRESS && own_ip && w.ep.n_addrs > 0) {
    bool own = false;
    for (uint32_t i = 0; i < w.ep.n_addrs && i < WEFT_EP_MAX_ADDRS; ++i)
      own |= IpAddr::FromBytes(w.ep.addrs[i]) == *own_ip;
    if (!own) {
      w.stage = WEFT_TRACE_STAGE_SOURCE;
      w.verdict = WEFT_VERDICT_DENY;
      w.reason = WEFT_DROP_SOURCE;
      auto id = bpf::IdentityOf(dir_path, peer_ip);
      if (id.ok() && id->has_value()) w.peer = (*id)->identity, w.peer_found = true;
      std::string list;
      for (const auto& a : EndpointAddrs(w.ep)) list += (list.empty() ? "" : ", ") + a;
      w.note = "source " + own_ip->ToString() + " is not one of the endpoint's addresses (" + list +
               "): dropped as a forged source, whatever policy applies";
      return w;
    }
  }
  if (!w.ep.enforce_ingress && !w.ep.enforce_egress) {
    w.stage = WEFT_TRACE_STAGE_NOT_ENFORCED;
    w.note = "the endpoint enforces neither direction: passes untracked";
    return w;
  }
  auto id = bpf::IdentityOf(dir_path, peer_ip);
  if (!id.ok()) throw Abort{{kExitEnv, "node " + node + ": " + id.status().message()}};
  w.peer_found = id->has_value();
  w.peer = w.peer_found ? (*id)->identity : uint32_t{WEFT_IDENTITY_UNKNOWN};
  w.enforced = dir == WEFT_DIR_INGRESS ? w.ep.enforce_ingress : w.ep.enforce_egress;
  if (!w.enforced) {
    w.stage = WEFT_TRACE_STAGE_UNENFORCED_DIR;
    w.verdict = WEFT_VERDICT_ALLOW;
    w.note = std::string(dir == WEFT_DIR_INGRESS ? "ingress" : "egress") + " is not enforced here: allowed";
    return w;
  }
  w.stage = WEFT_TRACE_STAGE_POLICY;
  // The kernel's lookup order and decision (weft/node/lookup.hpp).
  std::optional<weft_policy_val> first_hit;
  for (const auto& l : node::PolicyLookupOrder(w.peer, port)) {
    PolicyTry t;
    t.peer = l.peer;
    t.port = l.port;
    if (!first_hit) {
      t.looked_up = true;
      auto v = bpf::PolicyOf(dir_path, node::PolicyKey(w.ep.ep_id, l, proto, dir));
      if (!v.ok()) throw Abort{{kExitEnv, "node " + node + ": " + v.status().message()}};
      if (v->has_value()) {
        t.hit = true;
        t.val = **v;
      }
    }
    w.tries.push_back(t);
    if (t.hit) first_hit = t.val;
  }
  const node::PolicyOutcome out = node::DecidePolicy(first_hit ? &*first_hit : nullptr, w.peer);
  w.verdict = out.verdict;
  w.reason = out.reason;
  w.policy_id = out.policy_id;
  if (!first_hit) w.note = "no entry matched while the endpoint enforces this direction: default deny";
  return w;
}

// ---- (d) the TC program ------------------------------------------------------------
struct TcRun {
  std::string prog, path, node;
  uint32_t ifindex = 0;
  bool attempted = false, ran = false;
  std::string skipped;  // why not run
  TraceResult r;
};

TcRun RunProgram(const Cluster& c, const std::string& node, const char* prog, uint32_t ifindex, const Probe& probe) {
  TcRun t;
  t.prog = prog;
  t.node = node;
  t.ifindex = ifindex;
  t.path = c.ProgsDir(node) + "/" + prog;
  if (node.empty() || !ifindex) {
    t.skipped = "host veth unknown";
    return t;
  }
  t.attempted = true;
  std::error_code ec;
  if (!fs::exists(t.path, ec)) {
    t.skipped = "not pinned: no " + t.path + " (is the agent attaching the TC programs?)";
    return t;
  }
  UniqueFd fd(bpf_obj_get(t.path.c_str()));
  if (!fd) throw Abort{{kExitEnv, "open pinned program " + t.path + ": " + std::strerror(errno)}};
  auto supports = SupportsTraceMode(fd.get());
  if (!supports.ok()) throw Abort{{kExitEnv, t.path + ": " + supports.status().message()}};
  if (!*supports) {
    t.skipped = "the loaded program has no trace mode (WEFT_TRACE_MAGIC is not in its instructions): not run, "
                "a normal run would write conntrack and flow counts";
    return t;
  }
  auto ns = c.netns.find(node);
  if (ns == c.netns.end()) {
    t.skipped = "network namespace of node " + node + " unknown (pass --netns " + node + "=NS or --lab)";
    return t;
  }
  std::vector<uint8_t> pkt = BuildPacket(probe);
  Result<TraceResult> res = Status::Error("not run");
  Status st = bpf::InNetns(ns->second, [&] {
    res = RunTrace(fd.get(), ifindex, pkt);
    return res.status();
  });
  if (!st.ok()) throw Abort{{kExitEnv, "run " + t.path + " in " + ns->second + ": " + st.message()}};
  t.r = *res;
  if (!t.r.acknowledged) {
    t.skipped = "the program did not acknowledge trace mode (cb[0] came back " + std::to_string(t.r.cb[0]) + ")";
    return t;
  }
  t.ran = true;
  return t;
}

// ---- one path: source -> one backend ------------------------------------------------
struct PathResult {
  IpAddr ip;
  uint16_t port = 0;
  uint32_t backend_id = 0;
  uint32_t slots = 0;
  const Pod* pod = nullptr;
  Walk egress, ingress;
  TcRun tc_egress, tc_ingress;
  std::string verdict;  // allowed / denied
  std::string source;   // kernel / maps
  uint8_t reason = 0;
  uint32_t policy_id = 0;
  std::string decided_at;  // "egress" / "ingress" / ""
  std::string disagreement;
};

PathResult TracePath(const Cluster& c, const Pod& src, const IpAddr& src_ip, uint32_t src_ifindex, const IpAddr& ip,
                     uint16_t port, uint8_t proto, std::vector<std::string>* notes) {
  PathResult p;
  p.ip = ip;
  p.port = port;
  p.pod = c.PodByIp(ip);
  p.egress =
      WalkPolicy(c, "egress at " + src.Qualified(), src.node, src_ifindex, ip, port, proto, WEFT_DIR_EGRESS, &src_ip);
  uint32_t dst_ifindex = p.pod ? HostIfindex(c, *p.pod, notes) : 0;
  p.ingress = WalkPolicy(c, "ingress at " + (p.pod ? p.pod->Qualified() : HostPort(ip, port)),
                         p.pod ? p.pod->node : "", dst_ifindex, src_ip, port, proto, WEFT_DIR_INGRESS);

  static std::mt19937 rng{std::random_device{}()};
  Probe probe{src_ip, ip, static_cast<uint16_t>(32768 + rng() % 28000), port, proto};
  p.tc_egress = RunProgram(c, src.node, node::kProgFromPod, src_ifindex, probe);
  p.tc_ingress = RunProgram(c, p.pod ? p.pod->node : "", node::kProgToPod, dst_ifindex, probe);

  // The maps' answer: egress is evaluated first.
  auto from_maps = [&](const Walk& e, const Walk& i) {
    if (e.verdict == WEFT_VERDICT_DENY) return std::tuple{std::string("denied"), e.reason, e.policy_id, std::string("egress")};
    if (i.verdict == WEFT_VERDICT_DENY) return std::tuple{std::string("denied"), i.reason, i.policy_id, std::string("ingress")};
    uint32_t pol = i.policy_id ? i.policy_id : e.policy_id;
    return std::tuple{std::string("allowed"), uint8_t{0}, pol, std::string(i.policy_id ? "ingress" : e.policy_id ? "egress" : "")};
  };
  auto [mv, mr, mp, mat] = from_maps(p.egress, p.ingress);

  bool any_attempt = p.tc_egress.attempted || p.tc_ingress.attempted;
  bool all_ran = (!p.tc_egress.attempted || p.tc_egress.ran) && (!p.tc_ingress.attempted || p.tc_ingress.ran);
  if (any_attempt && all_ran) {
    p.source = "kernel";
    const TraceResult* e = p.tc_egress.ran ? &p.tc_egress.r : nullptr;
    const TraceResult* i = p.tc_ingress.ran ? &p.tc_ingress.r : nullptr;
    if (e && e->verdict == WEFT_VERDICT_DENY) {
      p.verdict = "denied", p.reason = e->reason, p.policy_id = e->policy_id, p.decided_at = "egress";
    } else if (i && i->verdict == WEFT_VERDICT_DENY) {
      p.verdict = "denied", p.reason = i->reason, p.policy_id = i->policy_id, p.decided_at = "ingress";
    } else {
      p.verdict = "allowed";
      p.policy_id = i && i->policy_id ? i->policy_id : e ? e->policy_id : 0;
      p.decided_at = i && i->policy_id ? "ingress" : e && e->policy_id ? "egress" : "";
    }
    if (p.verdict != mv || p.reason != mr || p.policy_id != mp)
      p.disagreement = "the maps walk says " + mv + " (" + node::DropReasonName(mr) + ", policy " +
                       std::to_string(mp) + "), the kernel " + p.verdict + " (" + node::DropReasonName(p.reason) +
                       ", policy " + std::to_string(p.policy_id) + ")";
  } else {
    p.source = "maps";
    p.verdict = mv, p.reason = mr, p.policy_id = mp, p.decided_at = mat;
  }
  return p;
}

// ---- output ------------------------------------------------------------------------
Json WalkJson(const Cluster& c, const Walk& w) {
  Json tries = Json::array();
  for (const auto& t : w.tries)
    tries.push_back({{"peer_identity", t.peer},
                     {"port", t.port},
                     {"looked_up", t.looked_up},
                     {"hit", t.hit},
                     {"verdict", t.hit ? Json(node::VerdictName(t.val.verdict)) : Json()},
                     {"policy", t.hit ? PolicyJson(c, t.val.policy_id) : Json()}});
  return {{"where", w.where},
          {"node", JsonOr(w.node)},
          {"ifindex", w.ifindex},
          {"endpoint", w.endpoint ? Json{{"ep_id", w.ep.ep_id},
                                         {"identity", w.ep.identity},
                                         {"enforce_ingress", w.ep.enforce_ingress != 0},
                                         {"enforce_egress", w.ep.enforce_egress != 0},
                                         {"source_check", w.ep.n_addrs > 0},
                                         {"addresses", EndpointAddrs(w.ep)}}
                                  : Json()},
          {"enforced", w.enforced},
          {"peer", w.stage == WEFT_TRACE_STAGE_POLICY || w.stage == WEFT_TRACE_STAGE_UNENFORCED_DIR
                       ? IdentityJson(c, w.peer, w.peer_found)
                       : Json()},
          {"lookups", tries},
          {"stage", node::TraceStageName(w.stage)},
          {"verdict", node::VerdictName(w.verdict)},
          {"reason", node::DropReasonName(w.reason)},
          {"policy", PolicyJson(c, w.policy_id)},
          {"note", JsonOr(w.note)}};
}

Json TcJson(const Cluster& c, const TcRun& t) {
  Json j = {{"program", t.prog}, {"path", t.path}, {"node", JsonOr(t.node)}, {"ifindex", t.ifindex},
            {"ran", t.ran},      {"skipped", JsonOr(t.skipped)}};
  if (t.ran) {
    j["retval"] = t.r.retval;
    j["action"] = TcActName(t.r.retval);
    j["verdict"] = node::VerdictName(t.r.verdict);
    j["reason"] = node::DropReasonName(t.r.reason);
    j["stage"] = node::TraceStageName(t.r.stage);
    j["policy"] = PolicyJson(c, t.r.policy_id);
    j["peer_identity"] = t.r.peer_identity;
    j["ep_id"] = t.r.ep_id;
  }
  return j;
}

std::string PeerLabel(const Cluster& c, uint32_t id, bool found) {
  return bpf::IdentityLabel(c, id) + (found ? "" : " (not in the identity cache)");
}

void PrintWalk(std::ostream& out, const Cluster& c, const Walk& w) {
  out << "     " << w.where;
  if (w.known) out << " (node " << w.node << ", ifindex " << w.ifindex;
  if (w.endpoint) out << ", ep " << w.ep.ep_id;
  if (w.known) out << ")";
  out << ": ";
  if (w.stage != WEFT_TRACE_STAGE_POLICY) {
    out << w.note << "\n";
    return;
  }
  out << "peer " << PeerLabel(c, w.peer, w.peer_found) << "\n";
  for (const auto& t : w.tries) {
    std::string key = "(" + (t.peer == WEFT_IDENTITY_ANY ? std::string("*") : std::to_string(t.peer)) + ", " +
                      (t.port ? std::to_string(t.port) : std::string("*")) + ")";
    out << "       " << key << std::string(key.size() < 16 ? 16 - key.size() : 1, ' ');
    if (t.hit)
      out << "hit: " << node::VerdictName(t.val.verdict) << " by " << PolicyName(c, t.val.policy_id) << "\n";
    else
      out << (t.looked_up ? "miss" : "(not looked up)") << "\n";
  }
  if (!w.note.empty()) out << "       " << w.note << "\n";
}

void PrintTc(std::ostream& out, const Cluster& c, const TcRun& t) {
  out << "     " << t.prog << (t.node.empty() ? "" : " (node " + t.node + ", ifindex " + std::to_string(t.ifindex) + ")")
      << ": ";
  if (!t.ran) {
    out << "not run: " << t.skipped << "\n";
    return;
  }
  out << "returned " << TcActName(t.r.retval) << "; verdict " << node::VerdictName(t.r.verdict);
  if (t.r.verdict == WEFT_VERDICT_DENY) out << " (" << node::DropReasonName(t.r.reason) << ")";
  out << ", stage " << node::TraceStageName(t.r.stage);
  if (t.r.policy_id) out << ", policy " << PolicyName(c, t.r.policy_id);
  if (t.r.peer_identity) out << ", peer " << bpf::IdentityLabel(c, t.r.peer_identity);
  out << ", ep " << t.r.ep_id << "\n";
}

int Run(const Options& o) {
  Cluster c;
  if (auto f = bpf::LoadCluster(o.cluster, &c)) {
    std::cerr << "weftctl trace: " << f->message << "\n";
    return f->code;
  }
  for (const auto& w : c.warnings) std::cerr << "weftctl trace: warning: " << w << "\n";
  const uint8_t proto = o.proto == "udp" ? IPPROTO_UDP : IPPROTO_TCP;
  std::vector<std::string> notes;
  try {
    const Pod* src = ResolvePod(c, "--from", o.from, false);
    auto src_ip_opt = FamilyIp(src->ips, o.v6);
    if (!src_ip_opt)
      throw Abort{{kExitBadInput, "--from " + o.from + ": pod " + src->Qualified() + " has no IPv" +
                                      (o.v6 ? "6" : "4") + " address"}};
    const IpAddr src_ip = *src_ip_opt;
    if (src->node.empty())
      throw Abort{{kExitBadInput, "--from " + o.from + ": the node of pod " + src->Qualified() + " is unknown"}};
    if (std::find(c.nodes.begin(), c.nodes.end(), src->node) == c.nodes.end())
      throw Abort{{kExitEnv, "--from " + o.from + ": node " + src->node + " has no pinned maps under " + c.pin_root}};
    Destination dst = ParseDestination(c, o.to, o.v6);
    if (dst.ip.is_v4() != src_ip.is_v4())
      throw Abort{{kExitBadInput, "--to " + o.to + ": address family differs from the source's " + src_ip.ToString()}};
    const uint32_t src_ifindex = HostIfindex(c, *src, &notes);

    // (a) socket-LB on the source's node.
    Json jlb = {{"node", src->node}};
    std::vector<std::string> lb_lines;
    struct Candidate {
      IpAddr ip;
      uint16_t port;
      uint32_t id, slots;
    };
    std::vector<Candidate> candidates;
    std::string final_verdict, pick_method;
    bool exact_pick = false;
    const std::string src_maps = c.MapsDir(src->node);
    std::vector<bpf::LiveService> live;
    if (dst.kind == "service" && !dst.port) {
      auto all = bpf::ServicesOfVip(src_maps, dst.ip, 0, 0, false);
      if (!all.ok()) throw Abort{{kExitEnv, "node " + src->node + ": " + all.status().message()}};
      std::vector<std::string> ports;
      for (const auto& s : *all)
        if (s.proto == proto) ports.push_back(std::to_string(s.port));
      if (ports.size() != 1)
        throw Abort{{kExitBadInput, "--to " + o.to + ": say which port (SERVICE:PORT); " + o.proto +
                                        " ports of " + dst.ip.ToString() + " in weft_services of node " + src->node +
                                        ": " + (ports.empty() ? "none" : Join(ports))}};
      dst.port = static_cast<uint16_t>(std::stoi(ports[0]));
    }
    if (dst.kind == "address" && !dst.port) throw Abort{{kExitBadInput, "--to " + o.to + ": say which port (IP:PORT)"}};
    auto lv = bpf::ServicesOfVip(src_maps, dst.ip, dst.port, proto, true);
    if (!lv.ok()) {
      if (lv.status().err() == ENOENT && dst.kind != "service") {
        notes.push_back("socket-LB maps are not pinned on node " + src->node + ": no service rewrite considered");
      } else {
        throw Abort{{kExitEnv, "node " + src->node + ": " + lv.status().message()}};
      }
    } else {
      live = std::move(*lv);
    }
    const std::string target = HostPort(dst.ip, dst.port) + "/" + o.proto;
    if (live.empty()) {
      jlb["service"] = false;
      if (dst.kind == "service") {
        lb_lines.push_back(target + " is not in weft_services of node " + src->node +
                           ": socket-LB leaves the connect alone and the VIP is routed nowhere");
        final_verdict = "unreachable";
      } else {
        lb_lines.push_back(target + " is not a service VIP: no socket-LB rewrite");
        candidates.push_back({dst.ip, dst.port, 0, 0});
      }
    } else {
      const bpf::LiveService& s = live[0];
      const bpf::Service* named = c.ServiceByVip(dst.ip);
      jlb["service"] = true;
      jlb["name"] = named ? Json(named->Qualified()) : Json();
      jlb["vip"] = dst.ip.ToString();
      jlb["port"] = dst.port;
      jlb["proto"] = o.proto;
      jlb["svc_id"] = s.val.svc_id;
      jlb["gen"] = s.val.gen;
      jlb["slot_count"] = s.val.slot_count;
      jlb["algo"] = node::AlgoName(s.val.algo);
      jlb["steer_to_proxy"] = (s.val.flags & WEFT_SVC_F_STEER_PROXY) != 0;
      lb_lines.push_back(target + " -> service " + (named ? named->Qualified() : "(unnamed)") + ", svc id " +
                         std::to_string(s.val.svc_id) + ", gen " + std::to_string(s.val.gen) + ", " +
                         std::to_string(s.val.slot_count) + " slots, " + node::AlgoName(s.val.algo));
      Json jb = Json::array();
      size_t missing = std::count(s.slot_table.begin(), s.slot_table.end(), 0u);
      for (const auto& b : s.backends) {
        const Pod* bp = b.present ? c.PodByIp(b.ip) : nullptr;
        double share = s.val.slot_count ? 100.0 * b.slots / s.val.slot_count : 0;
        char pct[32];
        std::snprintf(pct, sizeof(pct), "%.1f%%", share);
        jb.push_back({{"id", b.id},
                      {"address", b.present ? Json(HostPort(b.ip, b.port)) : Json()},
                      {"ip", b.present ? Json(b.ip.ToString()) : Json()},
                      {"port", b.port},
                      {"pod", bp ? Json(bp->Qualified()) : Json()},
                      {"slots", b.slots},
                      {"share", s.val.slot_count ? static_cast<double>(b.slots) / s.val.slot_count : 0.0}});
        lb_lines.push_back("  backend " + std::to_string(b.id) + " " +
                           (b.present ? HostPort(b.ip, b.port) : std::string("(missing from weft_backends)")) +
                           (bp ? " " + bp->Qualified() : "") + ": " + std::to_string(b.slots) + "/" +
                           std::to_string(s.val.slot_count) + " slots (" + pct + ")");
      }
      jlb["backends"] = jb;
      if (missing) lb_lines.push_back("  " + std::to_string(missing) + " slots missing (an update in progress?)");
      if (s.val.slot_count == 0) {
        final_verdict = "refused";
        pick_method = "none";
        lb_lines.push_back("no backends: connect()/sendmsg() fail with ECONNREFUSED (counted as no_backend)");
      } else if (s.val.algo == WEFT_LB_MAGLEV) {
        pick_method = "maglev";
        std::optional<uint64_t> cookie;
        if (!src->netns.empty()) {
          uint64_t ck = 0;
          Status st = bpf::InNetns(src->netns, [&] {
            UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            if (!sock) return Status::Errno("socket", errno);
            socklen_t len = sizeof(ck);
            if (getsockopt(sock.get(), SOL_SOCKET, SO_NETNS_COOKIE, &ck, &len) != 0)
              return Status::Errno("getsockopt(SO_NETNS_COOKIE)", errno);
            return Status::Ok();
          });
          if (st.ok()) cookie = ck;
          else notes.push_back("maglev: netns cookie of " + src->Qualified() + ": " + st.message());
        }
        if (cookie) {
          uint32_t slot = node::MaglevSlot(*cookie, s.val.slot_count);
          uint32_t be = slot < s.slot_table.size() ? s.slot_table[slot] : 0;
          jlb["pick"] = {{"method", "maglev"}, {"exact", true}, {"netns_cookie", *cookie}, {"slot", slot}, {"backend_id", be}};
          lb_lines.push_back("pick: maglev on the netns cookie " + std::to_string(*cookie) + " of " + src->Qualified() +
                             " -> slot " + std::to_string(slot) + " -> backend " + std::to_string(be) +
                             " (computed as the BPF does)");
          for (const auto& b : s.backends)
            if (b.id == be && b.present) candidates.push_back({b.ip, b.port, b.id, b.slots});
          exact_pick = true;
        } else {
          jlb["pick"] = {{"method", "maglev"}, {"exact", false}};
          lb_lines.push_back("pick: maglev, but the source's network namespace is unknown: every candidate listed");
        }
      } else {
        pick_method = "random";
        jlb["pick"] = {{"method", "random"}, {"exact", false}};
        lb_lines.push_back("pick: weighted random per connection: each candidate below with its slot share");
      }
      if (final_verdict.empty() && !exact_pick)
        for (const auto& b : s.backends)
          if (b.present) candidates.push_back({b.ip, b.port, b.id, b.slots});
    }

    // (b)-(d) per candidate.
    std::vector<PathResult> paths;
    if (final_verdict.empty())
      for (const auto& cand : candidates) {
        PathResult p = TracePath(c, *src, src_ip, src_ifindex, cand.ip, cand.port, proto, &notes);
        p.backend_id = cand.id;
        p.slots = cand.slots;
        paths.push_back(std::move(p));
      }

    // Identities from the live caches.
    auto src_self = src_ifindex ? bpf::EndpointOf(src_maps, src_ifindex) : Result<std::optional<weft_endpoint>>(std::optional<weft_endpoint>{});
    Json jid = Json::object();
    std::vector<std::string> id_lines;
    {
      auto own = bpf::IdentityOf(src_maps, src_ip);
      if (!own.ok()) throw Abort{{kExitEnv, "node " + src->node + ": " + own.status().message()}};
      uint32_t id = own->has_value() ? (*own)->identity : uint32_t{WEFT_IDENTITY_UNKNOWN};
      jid["source"] = {{"ip", src_ip.ToString()}, {"node", src->node}, {"identity", IdentityJson(c, id, own->has_value())}};
      id_lines.push_back("source " + src_ip.ToString() + " (" + src->Qualified() + "): " +
                         PeerLabel(c, id, own->has_value()) + " [node " + src->node + "'s weft_identity]");
      if (src_self.ok() && src_self->has_value() && (*src_self)->identity != id)
        id_lines.push_back("  note: its own endpoint entry says identity " + std::to_string((*src_self)->identity));
    }
    Json jdst = Json::array();
    std::set<IpAddr> shown;
    for (const auto& p : paths) {
      if (!shown.insert(p.ip).second) continue;  // several ports of one backend address
      auto id = bpf::IdentityOf(src_maps, p.ip);
      if (!id.ok()) throw Abort{{kExitEnv, "node " + src->node + ": " + id.status().message()}};
      uint32_t v = id->has_value() ? (*id)->identity : uint32_t{WEFT_IDENTITY_UNKNOWN};
      jdst.push_back({{"ip", p.ip.ToString()}, {"pod", p.pod ? Json(p.pod->Qualified()) : Json()},
                      {"identity", IdentityJson(c, v, id->has_value())}});
      id_lines.push_back("destination " + p.ip.ToString() + (p.pod ? " (" + p.pod->Qualified() + ")" : "") + ": " +
                         PeerLabel(c, v, id->has_value()) + " [node " + src->node + "'s weft_identity]");
      if (p.ingress.stage == WEFT_TRACE_STAGE_POLICY || p.ingress.stage == WEFT_TRACE_STAGE_UNENFORCED_DIR)
        id_lines.push_back("  the source as node " + p.ingress.node + " sees it: " +
                           PeerLabel(c, p.ingress.peer, p.ingress.peer_found));
    }
    jid["destinations"] = jdst;

    // The overall verdict.
    std::string verdict = final_verdict, source = final_verdict.empty() ? "" : "maps", reason = "none";
    uint32_t policy_id = 0;
    std::string decided_at;
    if (verdict.empty()) {
      if (paths.empty()) {
        verdict = "unreachable";
        source = "maps";
      } else {
        verdict = paths[0].verdict;
        source = paths[0].source;
        for (const auto& p : paths) {
          if (p.verdict != verdict) verdict = "mixed";
          if (p.source != source) source = "mixed";
        }
        if (verdict != "mixed") {
          reason = node::DropReasonName(paths[0].reason);
          policy_id = paths[0].policy_id;
          decided_at = paths[0].decided_at;
          for (const auto& p : paths)
            if (p.policy_id != policy_id || p.reason != paths[0].reason) policy_id = 0, reason = "varies by backend";
        } else {
          reason = "depends on the backend socket-LB picks";
        }
      }
    }
    if (final_verdict == "refused") reason = "no_backend";

    if (o.output == "json") {
      Json jpaths = Json::array();
      for (const auto& p : paths)
        jpaths.push_back({{"backend_id", p.backend_id},
                          {"address", HostPort(p.ip, p.port)},
                          {"ip", p.ip.ToString()},
                          {"port", p.port},
                          {"pod", p.pod ? Json(p.pod->Qualified()) : Json()},
                          {"node", p.pod ? JsonOr(p.pod->node) : Json()},
                          {"slots", p.slots},
                          {"policy_walk", {{"egress", WalkJson(c, p.egress)}, {"ingress", WalkJson(c, p.ingress)}}},
                          {"tc", {{"egress", TcJson(c, p.tc_egress)}, {"ingress", TcJson(c, p.tc_ingress)}}},
                          {"verdict", p.verdict},
                          {"verdict_source", p.source},
                          {"reason", node::DropReasonName(p.reason)},
                          {"decided_at", JsonOr(p.decided_at)},
                          {"policy", PolicyJson(c, p.policy_id)},
                          {"disagreement", JsonOr(p.disagreement)}});
      Json out = {{"from", {{"pod", src->Qualified()}, {"ip", src_ip.ToString()}, {"node", src->node},
                            {"host_ifindex", src_ifindex}}},
                  {"to", {{"input", o.to}, {"kind", dst.kind},
                          {"service", dst.service ? Json(dst.service->Qualified()) : Json()},
                          {"pod", dst.pod ? Json(dst.pod->Qualified()) : Json()},
                          {"ip", dst.ip.ToString()}, {"port", dst.port}, {"proto", o.proto}}},
                  {"socket_lb", jlb},
                  {"identities", jid},
                  {"paths", jpaths},
                  {"verdict", verdict},
                  {"verdict_source", source},
                  {"reason", reason},
                  {"decided_at", JsonOr(decided_at)},
                  {"policy", PolicyJson(c, policy_id)},
                  {"notes", notes},
                  {"warnings", c.warnings}};
      std::cout << out.dump(2) << "\n";
      return kExitOk;
    }
    std::ostringstream out;
    out << "trace " << o.proto << " " << src->Qualified() << " (" << src_ip.ToString() << ", node " << src->node
        << ") -> " << o.to << " (" << dst.kind << " " << HostPort(dst.ip, dst.port) << ")\n\n";
    out << "1. socket-LB (node " << src->node << ": weft_services, weft_slots, weft_backends)\n";
    for (const auto& l : lb_lines) out << "   " << l << "\n";
    out << "\n2. identities (live weft_identity, longest-prefix match)\n";
    for (const auto& l : id_lines) out << "   " << l << "\n";
    out << "\n3. policy (weft_policy: (peer, port) -> (peer, *) -> (*, port) -> (*, *), first entry decides)\n";
    if (paths.empty()) out << "   not reached\n";
    for (const auto& p : paths) {
      out << "   to " << HostPort(p.ip, p.port) << (p.pod ? " " + p.pod->Qualified() : "") << ":\n";
      PrintWalk(out, c, p.egress);
      PrintWalk(out, c, p.ingress);
    }
    out << "\n4. TC programs (BPF_PROG_TEST_RUN in trace mode, synthetic " << (proto == IPPROTO_TCP ? "TCP SYN" : "UDP")
        << " from " << src_ip.ToString() << ")\n";
    if (paths.empty()) out << "   not reached\n";
    for (const auto& p : paths) {
      out << "   to " << HostPort(p.ip, p.port) << (p.pod ? " " + p.pod->Qualified() : "") << ": " << p.verdict
          << (p.verdict == "denied" ? " (" + node::DropReasonName(p.reason) + ")" : "")
          << (p.policy_id ? " by " + PolicyName(c, p.policy_id) : "") << " [" << p.source << "]\n";
      PrintTc(out, c, p.tc_egress);
      PrintTc(out, c, p.tc_ingress);
      if (!p.disagreement.empty()) out << "     WARNING: " << p.disagreement << "\n";
    }
    for (const auto& n : notes) out << "\nnote: " << n;
    if (!notes.empty()) out << "\n";
    out << "\nverdict: " << verdict;
    if (verdict == "denied") out << " (" << reason << (policy_id ? ", " + PolicyName(c, policy_id) : "") << ", at " << decided_at << ")";
    else if (verdict == "allowed" && policy_id) out << " (by " << PolicyName(c, policy_id) << ")";
    else if (verdict == "refused") out << " (no backends: ECONNREFUSED)";
    else if (verdict == "mixed") out << " (" << reason << ")";
    out << " [" << (source == "kernel" ? "from the kernel" : source == "maps" ? "from the maps (no TC program run)" : source)
        << "]\n";
    std::cout << out.str();
    return kExitOk;
  } catch (const Abort& a) {
    std::cerr << "weftctl trace: " << a.f.message << "\n";
    return a.f.code;
  }
}

}  // namespace

void Register(CLI::App& root, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* c = root.add_subcommand(
      "trace", "explain one prospective flow from the live maps and the loaded TC programs (needs root)");
  c->add_option("--from", o->from, "source pod (name or ns/name)")->required();
  c->add_option("--to", o->to, "destination: SERVICE[:PORT], POD[:PORT] or IP:PORT")->required();
  c->add_option("--proto", o->proto, "tcp or udp")->check(CLI::IsMember({"tcp", "udp"}));
  c->add_flag("-6,--ipv6", o->v6, "trace the IPv6 addresses (default IPv4)");
  c->add_option("-o,--output", o->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  c->add_option("--lab", o->cluster.lab, "read the pin root, nodes, pods and services from this lab's state");
  c->add_option("--pin-root", o->cluster.pin_root,
                "bpffs pin root (default: the running lab's if exactly one runs, else /sys/fs/bpf/weft)");
  c->add_option("--state-dir", o->cluster.state_dir,
                "the agents' state dir with <node>/names.json (default: the lab agents', else /run/weft/agent)");
  c->add_option("--netns", o->cluster.netns,
                "network namespace of a node, NODE=NS or NS for every node (default: the lab's, else found by "
                "the endpoints' veths)");
  c->callback([o, exit_code] { *exit_code = Run(*o); });
}

}  // namespace weft::cli::trace
