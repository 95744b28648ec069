// `weftctl flows`: see flows.hpp and README.md.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/bpf/cluster.hpp"
#include "cli/bpf/decode.hpp"
#include "cli/bpf/live.hpp"
#include "cli/bpf/pinned_map.hpp"
#include "cli/command.hpp"
#include "cli/ctl/format.hpp"
#include "cli/flows/flows.hpp"
#include "weft/bpf_abi.h"
#include "weft/flow_aggregates.hpp"
#include "weft/node/enum_names.hpp"

namespace weft::cli::flows {

namespace {

using Json = nlohmann::json;
using bpf::Cluster;
using bpf::Failure;

struct Options {
  bpf::ClusterOptions cluster;
  bool follow = false;
  std::string from, to, verdict, since, duration, output = "table";
  uint64_t count = 0;
};

// "250ms", "10s", "5m", "1h", "1h30m", "2" (seconds). nullopt if malformed.
std::optional<std::chrono::nanoseconds> ParseDuration(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::chrono::nanoseconds total{0};
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double v = 0;
    try {
      v = std::stod(s.substr(i, j - i));
    } catch (...) {
      return std::nullopt;
    }
    size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    std::string unit = s.substr(j, k - j);
    double ns;
    if (unit == "ns") ns = 1;
    else if (unit == "us") ns = 1e3;
    else if (unit == "ms") ns = 1e6;
    else if (unit == "s" || (unit.empty() && k == s.size() && i == 0)) ns = 1e9;
    else if (unit == "m") ns = 60e9;
    else if (unit == "h") ns = 3600e9;
    else return std::nullopt;
    total += std::chrono::nanoseconds(static_cast<int64_t>(v * ns));
    i = k;
  }
  return total;
}

uint64_t NowNs(clockid_t clk) {
  timespec ts{};
  clock_gettime(clk, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// bpf_ktime_get_ns (CLOCK_MONOTONIC) -> RFC 3339 UTC with milliseconds.
std::string WallTime(uint64_t mono_ns) {
  uint64_t now_mono = NowNs(CLOCK_MONOTONIC), now_real = NowNs(CLOCK_REALTIME);
  uint64_t real = now_real - (now_mono > mono_ns ? now_mono - mono_ns : 0);
  time_t secs = static_cast<time_t>(real / 1000000000ull);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<unsigned>((real / 1000000ull) % 1000));
  return buf;
}

// ---- filters ------------------------------------------------------------------
// What --from/--to/--verdict select, for one node (identities are looked up in
// that node's identity cache when names.json does not have them).
struct Side {
  bool set = false;
  std::string what;          // "pod ns/x", "service ns/y", "service account ns/sa"
  std::set<uint32_t> ids;    // aggregates: identity
  std::set<IpAddr> ips;      // events: address (pods)
  std::set<std::pair<IpAddr, uint16_t>> endpoints;  // events: address:port (service backends)
  std::set<uint16_t> ports;  // aggregates: destination port (service backends)
  bool by_endpoint = false;  // a service: match address:port / identity+port
};
struct Filter {
  Side from, to;
  int verdict = 0;  // 0 any, 1 allowed, 2 denied
};

std::string Join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

Failure Unknown(const Cluster& c, const std::string& flag, const std::string& text, bool services) {
  auto close = c.Suggest(text, true, services, true);
  std::string msg = flag + " " + text + ": no pod" + (services ? ", service" : "") + " or service account of that name";
  if (!close.empty()) msg += " (known: " + Join(close) + ")";
  if (c.pods.empty() && c.names.empty())
    msg += "; no names are known (no lab state and no names.json: pass --lab or --state-dir)";
  return Failure{kExitBadInput, msg};
}

// The identity of a pod on `node`'s maps: names.json first, else the live LPM.
void AddPodIdentities(const Cluster& c, const std::string& node, const bpf::Pod& p, Side* s) {
  if (p.identity) s->ids.insert(p.identity);
  for (const auto& ip : p.ips) {
    s->ips.insert(ip);
    auto id = bpf::IdentityOf(c.MapsDir(node), ip);
    if (id.ok() && id->has_value()) s->ids.insert((*id)->identity);
  }
}

std::optional<Failure> BuildSide(const Cluster& c, const std::string& node, const std::string& flag,
                                 const std::string& text, bool is_to, Side* s) {
  if (text.empty()) return std::nullopt;
  s->set = true;
  bool ambiguous = false;
  if (const bpf::Pod* p = c.FindPod(text, &ambiguous)) {
    s->what = "pod " + p->Qualified();
    AddPodIdentities(c, node, *p, s);
    return std::nullopt;
  }
  if (ambiguous) {
    std::vector<std::string> all;
    for (const auto& p : c.pods)
      if (p.name == text) all.push_back(p.Qualified());
    return Failure{kExitBadInput, flag + " " + text + ": several pods of that name, say which: " + Join(all)};
  }
  if (is_to) {
    if (const bpf::Service* svc = c.FindService(text)) {
      s->what = "service " + svc->Qualified();
      s->by_endpoint = true;
      for (const auto& vip : svc->vips) {
        s->ips.insert(vip);  // never seen at TC (socket-LB rewrote it), harmless
        auto live = bpf::ServicesOfVip(c.MapsDir(node), vip, 0, 0, /*with_slots=*/true);
        if (!live.ok()) {
          if (live.status().err() == ENOENT) continue;  // no socket-LB maps on this node
          return Failure{kExitEnv, flag + " " + text + ": node " + node + ": " + live.status().message()};
        }
        for (const auto& ls : *live)
          for (const auto& b : ls.backends) {
            if (!b.present) continue;
            s->endpoints.insert({b.ip, b.port});
            s->ports.insert(b.port);
            if (const bpf::Pod* bp = c.PodByIp(b.ip); bp && bp->identity) s->ids.insert(bp->identity);
            auto id = bpf::IdentityOf(c.MapsDir(node), b.ip);
            if (id.ok() && id->has_value()) s->ids.insert((*id)->identity);
          }
      }
      return std::nullopt;
    }
  }
  auto ids = c.IdentitiesOfSa(text);
  if (!ids.empty()) {
    s->what = "service account " + text;
    s->ids.insert(ids.begin(), ids.end());
    return std::nullopt;
  }
  // A numeric identity is accepted as is.
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    s->what = "identity " + text;
    s->ids.insert(static_cast<uint32_t>(std::stoul(text)));
    return std::nullopt;
  }
  return Unknown(c, flag, text, is_to);
}

bool MatchAggregate(const Filter& f, const weft_flow_key& k) {
  if (f.from.set && !f.from.ids.count(k.src_identity)) return false;
  if (f.to.set) {
    if (!f.to.ids.count(k.dst_identity)) return false;
    if (f.to.by_endpoint && !f.to.ports.count(k.dport)) return false;
  }
  if (f.verdict == 1 && !node::VerdictAllows(k.verdict)) return false;
  if (f.verdict == 2 && node::VerdictAllows(k.verdict)) return false;
  return true;
}

bool MatchEvent(const Filter& f, const weft_flow_event& e) {
  IpAddr src = IpAddr::FromBytes(e.saddr), dst = IpAddr::FromBytes(e.daddr);
  if (f.from.set) {
    bool ok = f.from.ips.empty() ? f.from.ids.count(e.src_identity) > 0 : f.from.ips.count(src) > 0;
    if (!ok) return false;
  }
  if (f.to.set) {
    bool ok;
    if (f.to.by_endpoint)
      ok = f.to.endpoints.count({dst, ntohs(e.dport)}) > 0 || f.to.ips.count(dst) > 0;
    else
      ok = f.to.ips.empty() ? f.to.ids.count(e.dst_identity) > 0 : f.to.ips.count(dst) > 0;
    if (!ok) return false;
  }
  if (f.verdict == 1 && !node::VerdictAllows(e.verdict)) return false;
  if (f.verdict == 2 && node::VerdictAllows(e.verdict)) return false;
  return true;
}

// ---- naming -------------------------------------------------------------------
std::vector<std::string> PodNames(const Cluster& c, uint32_t identity) {
  std::vector<std::string> out;
  if (identity < WEFT_IDENTITY_FIRST_DYNAMIC) return out;
  for (const auto* p : c.PodsOfIdentity(identity)) out.push_back(p->Qualified());
  return out;
}

std::string Short(const std::vector<std::string>& v) {
  if (v.empty()) return "-";
  std::string s;
  for (size_t i = 0; i < v.size() && i < 3; ++i) s += (i ? "," : "") + v[i];
  if (v.size() > 3) s += ",+" + std::to_string(v.size() - 3);
  return s;
}

Json JsonOr(const std::string& s) { return s.empty() ? Json() : Json(s); }

std::string SpiffeOf(const Cluster& c, uint32_t id) {
  const bpf::IdentityName* n = c.Identity(id);
  return n ? n->spiffe_id : "";
}

std::string PolicyLabel(const Cluster& c, uint32_t id) {
  if (id == 0) return "-";
  const bpf::PolicyName* p = c.Policy(id);
  return p && !p->name.empty() ? p->name : "#" + std::to_string(id);
}

Json IdentityJson(const Cluster& c, uint32_t id) {
  std::string r = node::ReservedIdentityName(id);
  return {{"id", id}, {"spiffe_id", JsonOr(SpiffeOf(c, id))}, {"reserved", JsonOr(r)}, {"pods", PodNames(c, id)}};
}

Json PolicyJson(const Cluster& c, uint32_t id) {
  const bpf::PolicyName* p = id ? c.Policy(id) : nullptr;
  return {{"id", id}, {"name", p ? JsonOr(p->name) : Json()}, {"action", p ? JsonOr(p->action) : Json()}};
}

void PrintWarnings(const Cluster& c) {
  for (const auto& w : c.warnings) std::cerr << "weftctl flows: warning: " << w << "\n";
}

int Fail(const Failure& f) {
  std::cerr << "weftctl flows: " << f.message << "\n";
  return f.code;
}

// ---- aggregates -----------------------------------------------------------------
int RunAggregates(const Options& o, const Cluster& c, const std::map<std::string, Filter>& filters) {
  if (!o.since.empty())
    std::cerr << "weftctl flows: note: --since applies to --follow only: the aggregates have no time "
                 "(they count since the maps were created)\n";
  std::vector<std::vector<std::string>> rows = {{"NODE", "SEEN", "SOURCE", "SRC-PODS", "DESTINATION", "DST-PODS",
                                                 "PORT", "PROTO", "VERDICT", "REASON", "POLICY", "CONNECTIONS", "PACKETS",
                                                 "BYTES"}};
  Json jflows = Json::array(), jlost = Json::object();
  for (const auto& node : c.nodes) {
    const std::string dir = c.MapsDir(node);
    auto m = bpf::OpenPinnedMap(dir, WEFT_MAP_FLOWS);
    if (!m.ok()) return Fail({kExitEnv, "node " + node + ": " + m.status().message()});
    auto ctr = bpf::OpenPinnedMap(dir, WEFT_MAP_FLOW_COUNTERS);
    if (!ctr.ok()) return Fail({kExitEnv, "node " + node + ": " + ctr.status().message()});
    if (auto st = bpf::CheckLayout(*m, sizeof(weft_flow_key), "weft_flow_key", sizeof(weft_flow_slot), "weft_flow_slot");
        !st.ok())
      return Fail({kExitEnv, "node " + node + ": " + st.message()});
    if (auto st = bpf::CheckLayout(*ctr, sizeof(uint32_t), "__u32", sizeof(weft_flow_val), "weft_flow_val"); !st.ok())
      return Fail({kExitEnv, "node " + node + ": " + st.message()});
    auto all = ::weft::flows::ReadAggregates(m->fd.get(), ctr->fd.get());
    if (!all.ok()) return Fail({kExitEnv, "node " + node + ": " + all.status().message()});
    struct Row {
      weft_flow_key k;
      std::vector<uint64_t> v;
    };
    std::vector<Row> agg;
    for (const auto& a : *all) {
      if (!MatchAggregate(filters.at(node), a.key)) continue;
      agg.push_back({a.key, {a.total.connections, a.total.packets, a.total.bytes}});
    }
    std::sort(agg.begin(), agg.end(), [](const Row& a, const Row& b) {
      return std::tie(a.k.src_identity, a.k.dst_identity, a.k.dport, a.k.proto, a.k.verdict, a.k.reason,
                      a.k.policy_id, a.k.direction) < std::tie(b.k.src_identity, b.k.dst_identity, b.k.dport,
                                                               b.k.proto, b.k.verdict, b.k.reason, b.k.policy_id,
                                                               b.k.direction);
    });
    for (const auto& r : agg) {
      const auto& k = r.k;
      uint64_t conns = r.v[0], packets = r.v[1], bytes = r.v[2];
      rows.push_back({node, node::DirectionName(k.direction), bpf::IdentityLabel(c, k.src_identity), Short(PodNames(c, k.src_identity)),
                      bpf::IdentityLabel(c, k.dst_identity), Short(PodNames(c, k.dst_identity)), std::to_string(k.dport),
                      node::ProtoName(k.proto), node::VerdictName(k.verdict), node::DropReasonName(k.reason),
                      PolicyLabel(c, k.policy_id), std::to_string(conns), std::to_string(packets),
                      std::to_string(bytes)});
      jflows.push_back({{"node", node},
                        {"source", IdentityJson(c, k.src_identity)},
                        {"destination", IdentityJson(c, k.dst_identity)},
                        {"dport", k.dport},
                        {"proto", node::ProtoName(k.proto)},
                        {"direction", node::DirectionName(k.direction)},
                        {"verdict", node::VerdictName(k.verdict)},
                        {"allowed", node::VerdictAllows(k.verdict)},
                        {"reason", node::DropReasonName(k.reason)},
                        {"policy", PolicyJson(c, k.policy_id)},
                        {"connections", conns},
                        {"packets", packets},
                        {"bytes", bytes}});
    }
    auto ev = bpf::EventStats(dir);
    if (ev.ok()) jlost[node] = {{"sent", ev->first}, {"lost", ev->second}};
  }
  if (o.output == "json") {
    Json filter = Json::object();
    for (const auto& [node, f] : filters) {
      if (f.from.set) filter["from"] = f.from.what;
      if (f.to.set) filter["to"] = f.to.what;
    }
    if (!o.verdict.empty()) filter["verdict"] = o.verdict;
    std::cout << Json{{"pin_root", c.pin_root}, {"nodes", c.nodes}, {"filter", filter}, {"flows", jflows},
                      {"events", jlost}, {"warnings", c.warnings}}
                     .dump(2)
              << "\n";
    return kExitOk;
  }
  std::cout << ctl::RenderTable(rows);
  for (const auto& [node, s] : jlost.items())
    std::cout << "# node " << node << ": ring-buffer events sent " << s["sent"].get<uint64_t>() << ", lost "
              << s["lost"].get<uint64_t>() << " (the aggregates above are exact either way)\n";
  return kExitOk;
}

// ---- follow ---------------------------------------------------------------------
volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct NodeRing {
  std::string node;
  bpf::PinnedMap map;
  const Filter* filter = nullptr;
  struct Follow* f = nullptr;
  uint64_t lost_start = 0, lost_last = 0;
};

struct Follow {
  const Options* o;
  const Cluster* c;
  uint64_t min_ts = 0;  // --since
  uint64_t printed = 0, seen = 0;
  bool json = false;
};

std::string Addr(const IpAddr& ip, uint16_t port) {
  return (ip.is_v4() ? ip.ToString() : "[" + ip.ToString() + "]") + ":" + std::to_string(port);
}

int OnEvent(void* ctx, void* data, size_t len) {
  auto* r = static_cast<NodeRing*>(ctx);
  Follow* f = r->f;
  if (len < sizeof(weft_flow_event)) return 0;
  weft_flow_event e;
  std::memcpy(&e, data, sizeof(e));
  ++f->seen;
  if (e.ts_ns < f->min_ts) return 0;
  if (!MatchEvent(*r->filter, e)) return 0;
  if (f->o->count && f->printed >= f->o->count) return 0;
  ++f->printed;
  const Cluster& c = *f->c;
  IpAddr src = IpAddr::FromBytes(e.saddr), dst = IpAddr::FromBytes(e.daddr);
  const bpf::Pod* sp = c.PodByIp(src);
  const bpf::Pod* dp = c.PodByIp(dst);
  std::string sname = sp ? sp->Qualified() : "", dname = dp ? dp->Qualified() : "";
  if (f->json) {
    auto side = [&](const IpAddr& ip, uint16_t port, const std::string& pod, uint32_t id) {
      return Json{{"ip", ip.ToString()}, {"port", port}, {"pod", JsonOr(pod)}, {"identity", id},
                  {"spiffe_id", JsonOr(SpiffeOf(c, id))}};
    };
    Json j = {{"type", "flow"},
              {"time", WallTime(e.ts_ns)},
              {"ts_ns", e.ts_ns},
              {"node", r->node},
              {"direction", node::DirectionName(e.direction)},
              {"source", side(src, ntohs(e.sport), sname, e.src_identity)},
              {"destination", side(dst, ntohs(e.dport), dname, e.dst_identity)},
              {"proto", node::ProtoName(e.proto)},
              {"verdict", node::VerdictName(e.verdict)},
              {"allowed", node::VerdictAllows(e.verdict)},
              {"reason", node::DropReasonName(e.reason)},
              {"policy", PolicyJson(c, e.policy_id)}};
    std::cout << j.dump() << "\n";
  } else {
    std::string line = WallTime(e.ts_ns) + " " + r->node + " " + node::DirectionName(e.direction) + " " +
                       Addr(src, ntohs(e.sport)) + (sname.empty() ? "" : " (" + sname + ")") + " -> " +
                       Addr(dst, ntohs(e.dport)) + (dname.empty() ? "" : " (" + dname + ")") + " " +
                       node::ProtoName(e.proto) + " " + node::VerdictName(e.verdict);
    if (!node::VerdictAllows(e.verdict)) line += " reason=" + node::DropReasonName(e.reason);
    line += " policy=" + PolicyLabel(c, e.policy_id) + " identities=" + bpf::IdentityLabel(c, e.src_identity) +
            " -> " + bpf::IdentityLabel(c, e.dst_identity);
    std::cout << line << "\n";
  }
  return 0;
}

// Prints the lost counter of every node; `why`: "start", "change", "exit".
void ReportLost(Follow& f, std::vector<std::unique_ptr<NodeRing>>& rings, const char* why, bool force) {
  for (auto& r : rings) {
    auto ev = bpf::EventStats(f.c->MapsDir(r->node));
    if (!ev.ok()) continue;
    uint64_t lost = ev->second;
    if (!force && lost == r->lost_last) continue;
    if (std::string(why) == "start") r->lost_start = lost;
    r->lost_last = lost;
    uint64_t during = lost - r->lost_start;
    if (f.json) {
      std::cout << Json{{"type", "lost"}, {"when", why}, {"node", r->node}, {"lost_total", lost},
                        {"lost_while_following", during}, {"sent_total", ev->first}}
                       .dump()
                << "\n";
    } else {
      std::cout << "# " << why << ": node " << r->node << ": lost events " << lost << " since the maps were created, "
                << during << " while following (sent " << ev->first << ")\n";
    }
  }
  std::cout.flush();
}

int RunFollow(const Options& o, const Cluster& c, const std::map<std::string, Filter>& filters) {
  Follow f{&o, &c};
  f.json = o.output == "json";
  uint64_t start = NowNs(CLOCK_MONOTONIC);
  if (!o.since.empty()) {
    auto d = ParseDuration(o.since);
    uint64_t back = static_cast<uint64_t>(d->count());
    f.min_ts = start > back ? start - back : 0;
  }
  std::optional<std::chrono::steady_clock::time_point> until;
  if (!o.duration.empty()) until = std::chrono::steady_clock::now() + *ParseDuration(o.duration);

  std::vector<std::unique_ptr<NodeRing>> rings;
  ring_buffer* rb = nullptr;
  struct RbFree {
    ring_buffer*& rb;
    ~RbFree() {
      if (rb) ring_buffer__free(rb);
    }
  } rb_free{rb};
  for (const auto& node : c.nodes) {
    auto m = bpf::OpenPinnedMap(c.MapsDir(node), WEFT_MAP_FLOW_EVENTS, /*writable=*/true);
    if (!m.ok()) return Fail({kExitEnv, "node " + node + ": " + m.status().message()});
    if (m->info.type != BPF_MAP_TYPE_RINGBUF)
      return Fail({kExitEnv, "node " + node + ": " + m->path + " is a " + m->type_name() + " map, not a ringbuf"});
    auto r = std::make_unique<NodeRing>();
    r->node = node;
    r->map = std::move(*m);
    r->filter = &filters.at(node);
    r->f = &f;
    int err = 0;
    if (!rb) {
      rb = ring_buffer__new(r->map.fd.get(), OnEvent, r.get(), nullptr);
      if (!rb) err = errno;
    } else {
      err = -ring_buffer__add(rb, r->map.fd.get(), OnEvent, r.get());
    }
    if (err) return Fail({kExitEnv, "node " + node + ": open ring buffer " + r->map.path + ": " + std::strerror(err)});
    rings.push_back(std::move(r));
  }

  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_stop = 0;

  ReportLost(f, rings, "start", /*force=*/true);
  int rc = kExitOk;
  while (!g_stop) {
    if (o.count && f.printed >= o.count) break;
    if (until && std::chrono::steady_clock::now() >= *until) break;
    int n = ring_buffer__poll(rb, 100);
    if (n < 0 && n != -EINTR) {
      std::cerr << "weftctl flows: poll ring buffer: " << std::strerror(-n) << "\n";
      rc = kExitEnv;
      break;
    }
    std::cout.flush();
    ReportLost(f, rings, "change", /*force=*/false);
  }
  if (!g_stop) ring_buffer__consume(rb);  // whatever arrived with the last poll
  ReportLost(f, rings, "exit", /*force=*/true);
  uint64_t lost_during = 0;
  for (auto& r : rings) lost_during += r->lost_last - r->lost_start;
  if (f.json)
    std::cout << Json{{"type", "summary"}, {"events", f.printed}, {"events_read", f.seen},
                      {"lost_while_following", lost_during}}
                     .dump()
              << "\n";
  else
    std::cout << "# " << f.printed << " events shown (" << f.seen << " read), " << lost_during
              << " lost while following\n";
  std::cout.flush();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return rc;
}

int Run(const Options& o) {
  if (!o.since.empty() && !ParseDuration(o.since))
    return Fail({kExitBadInput, "--since " + o.since + ": not a duration (e.g. 30s, 5m, 1h, 250ms)"});
  if (!o.duration.empty() && !ParseDuration(o.duration))
    return Fail({kExitBadInput, "--duration " + o.duration + ": not a duration (e.g. 30s, 5m, 1h, 250ms)"});
  if (!o.follow && (o.count || !o.duration.empty()))
    return Fail({kExitBadInput, "--count and --duration bound --follow; without --follow flows prints once"});
  Cluster c;
  if (auto f = bpf::LoadCluster(o.cluster, &c)) return Fail(*f);
  PrintWarnings(c);
  std::map<std::string, Filter> filters;
  for (const auto& node : c.nodes) {
    Filter f;
    if (auto fail = BuildSide(c, node, "--from", o.from, false, &f.from)) return Fail(*fail);
    if (auto fail = BuildSide(c, node, "--to", o.to, true, &f.to)) return Fail(*fail);
    f.verdict = o.verdict == "allowed" ? 1 : o.verdict == "denied" ? 2 : 0;
    filters[node] = std::move(f);
  }
  return o.follow ? RunFollow(o, c, filters) : RunAggregates(o, c, filters);
}

}  // namespace

void Register(CLI::App& root, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* c = root.add_subcommand(
      "flows",
      "flows seen by the TC policy programs: exact aggregates (weft_flows), or --follow the event ring buffer "
      "with its lost-event counter (needs root)");
  c->add_flag("-f,--follow", o->follow, "stream events from the ring buffer (weft_flow_ev) until stopped");
  c->add_option("--from", o->from, "source: a pod (name or ns/name) or a service account (ns/sa or SPIFFE id)");
  c->add_option("--to", o->to, "destination: a pod, a service (ns/name; matched by its live backends) or a service account");
  c->add_option("--verdict", o->verdict, "allowed or denied")->check(CLI::IsMember({"allowed", "denied"}));
  c->add_option("--since", o->since,
                "--follow: skip events older than this (e.g. 30s, 5m); default: all events waiting in the buffer. "
                "The aggregates have no time: ignored without --follow");
  c->add_option("--count", o->count, "--follow: stop after this many events (after filtering)");
  c->add_option("--duration", o->duration, "--follow: stop after this long (e.g. 10s)");
  c->add_option("-o,--output", o->output, "table or json (--follow: one JSON object per line)")
      ->check(CLI::IsMember({"table", "json"}));
  c->add_option("--node", o->cluster.node, "only this node (default: every node with pinned maps)");
  c->add_option("--lab", o->cluster.lab, "read the pin root, nodes, pods and services from this lab's state");
  c->add_option("--pin-root", o->cluster.pin_root,
                "bpffs pin root (default: the running lab's if exactly one runs, else /sys/fs/bpf/weft)");
  c->add_option("--state-dir", o->cluster.state_dir,
                "the agents' state dir with <node>/names.json (default: the lab agents', else /run/weft/agent)");
  c->callback([o, exit_code] { *exit_code = Run(*o); });
}

}  // namespace weft::cli::flows
