#include "cli/bpf/decode.hpp"

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <time.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>
#include <tuple>

#include "weft/bpf_abi.h"
#include "weft/ip.hpp"
#include "weft/node/enum_names.hpp"

namespace weft::cli::bpf {

namespace {

using Json = nlohmann::json;

std::string Addr(const uint8_t b[16]) { return IpAddr::FromBytes(b).ToString(); }

std::string HostPort(const uint8_t b[16], uint16_t port_host) {
  IpAddr ip = IpAddr::FromBytes(b);
  std::string a = ip.is_v4() ? ip.ToString() : "[" + ip.ToString() + "]";
  return a + ":" + std::to_string(port_host);
}

std::string Lookup(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

std::string Or(const std::string& s, const char* dflt = "-") { return s.empty() ? dflt : s; }

std::vector<std::string> SvcFlags(uint8_t f) {
  std::vector<std::string> out;
  if (f & WEFT_SVC_F_STEER_PROXY) out.push_back("steer-to-proxy");
  uint8_t rest = f & ~uint8_t{WEFT_SVC_F_STEER_PROXY};
  if (rest)
    out.push_back("0x" + [&] {
      char b[8];
      std::snprintf(b, sizeof(b), "%02x", rest);
      return std::string(b);
    }());
  return out;
}

std::string Join(const std::vector<std::string>& v, const std::string& sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// "0 (any)", "1 (unknown)", ..., "256".
std::string Identity(uint32_t id) {
  std::string r = node::ReservedIdentityName(id);
  return r.empty() ? std::to_string(id) : std::to_string(id) + " (" + r + ")";
}

std::string Hex(const std::vector<uint8_t>& b, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < n && i < b.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", b[i]);
    s += buf;
  }
  return s;
}

// Sum of a per-CPU value, field by field through `add`.
template <typename T>
T SumPerCpu(const RawDump& d, const RawEntry& e, const std::function<void(T&, const T&)>& add) {
  T sum{};
  for (int c = 0; c < d.ncpus; ++c) add(sum, Load<T>(e.value.data() + static_cast<size_t>(c) * d.stride));
  return sum;
}
uint64_t SumU64(const RawDump& d, const RawEntry& e) {
  return SumPerCpu<uint64_t>(d, e, [](uint64_t& s, const uint64_t& v) { s += v; });
}

// ---- sibling maps, for names ----
struct SvcInfo {
  std::string label;  // "ns/name" or "vip:port/proto"
  std::string name;   // "ns/name" or ""
  uint16_t gen = 0;
  uint16_t slot_count = 0;
};
std::map<uint32_t, SvcInfo> ServiceIndex(const std::string& maps_dir, const Names& names) {
  std::map<uint32_t, SvcInfo> out;
  auto m = OpenPinnedMap(maps_dir, WEFT_MAP_SERVICES);
  if (!m.ok() || !CheckLayout(*m, sizeof(weft_svc_key), "", sizeof(weft_svc_val), "").ok()) return out;
  auto d = ReadAll(*m);
  if (!d.ok()) return out;
  for (const auto& e : d->entries) {
    auto k = Load<weft_svc_key>(e.key.data());
    auto v = Load<weft_svc_val>(e.value.data());
    SvcInfo i;
    i.name = Lookup(names.vips, Addr(k.addr));
    std::string key = HostPort(k.addr, ntohs(k.port)) + "/" + node::ProtoName(k.proto);
    i.label = i.name.empty() ? key : i.name + " " + key;
    i.gen = v.gen;
    i.slot_count = v.slot_count;
    auto [it, fresh] = out.emplace(v.svc_id, i);
    if (!fresh) it->second.label += ", " + key;  // one id per key, but be honest if not
  }
  return out;
}

struct BeInfo {
  std::string address, name;
};
std::map<uint32_t, BeInfo> BackendIndex(const std::string& maps_dir, const Names& names) {
  std::map<uint32_t, BeInfo> out;
  auto m = OpenPinnedMap(maps_dir, WEFT_MAP_BACKENDS);
  if (!m.ok() || !CheckLayout(*m, sizeof(uint32_t), "", sizeof(weft_backend), "").ok()) return out;
  auto d = ReadAll(*m);
  if (!d.ok()) return out;
  for (const auto& e : d->entries) {
    auto v = Load<weft_backend>(e.value.data());
    out[Load<uint32_t>(e.key.data())] = {HostPort(v.addr, ntohs(v.port)), Lookup(names.workloads, Addr(v.addr))};
  }
  return out;
}

// ---- decoders ----
using Decoder = std::function<Status(const PinnedMap&, const RawDump&, const std::string&, const Names&,
                                     const DumpOptions&, Decoded*)>;

Status Services(const PinnedMap& m, const RawDump& d, const std::string&, const Names& names, const DumpOptions&,
                Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(weft_svc_key), "weft_svc_key", sizeof(weft_svc_val), "weft_svc_val"));
  std::vector<std::pair<weft_svc_key, weft_svc_val>> kv;
  for (const auto& e : d.entries) kv.emplace_back(Load<weft_svc_key>(e.key.data()), Load<weft_svc_val>(e.value.data()));
  std::sort(kv.begin(), kv.end(), [](const auto& a, const auto& b) {
    return std::make_tuple(IpAddr::FromBytes(a.first.addr), ntohs(a.first.port), a.first.proto) <
           std::make_tuple(IpAddr::FromBytes(b.first.addr), ntohs(b.first.port), b.first.proto);
  });
  out->rows.push_back({"SERVICE", "VIP", "PORT", "PROTO", "SVC-ID", "GEN", "SLOTS", "ALGO", "FLAGS"});
  for (const auto& [k, v] : kv) {
    std::string vip = Addr(k.addr), name = Lookup(names.vips, vip);
    auto flags = SvcFlags(v.flags);
    out->rows.push_back({Or(name), vip, std::to_string(ntohs(k.port)), node::ProtoName(k.proto), std::to_string(v.svc_id),
                         std::to_string(v.gen), std::to_string(v.slot_count), node::AlgoName(v.algo), Or(Join(flags))});
    out->json.push_back({{"service", name.empty() ? Json() : Json(name)},
                         {"vip", vip},
                         {"port", ntohs(k.port)},
                         {"proto", node::ProtoName(k.proto)},
                         {"svc_id", v.svc_id},
                         {"gen", v.gen},
                         {"slot_count", v.slot_count},
                         {"algo", node::AlgoName(v.algo)},
                         {"flags", flags},
                         {"steer_to_proxy", (v.flags & WEFT_SVC_F_STEER_PROXY) != 0}});
  }
  return Status::Ok();
}

Status Backends(const PinnedMap& m, const RawDump& d, const std::string&, const Names& names, const DumpOptions&,
                Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(weft_backend), "weft_backend"));
  std::map<uint32_t, weft_backend> kv;
  for (const auto& e : d.entries) kv[Load<uint32_t>(e.key.data())] = Load<weft_backend>(e.value.data());
  out->rows.push_back({"BACKEND-ID", "ADDRESS", "WORKLOAD"});
  for (const auto& [id, v] : kv) {
    std::string addr = Addr(v.addr), name = Lookup(names.workloads, addr);
    out->rows.push_back({std::to_string(id), HostPort(v.addr, ntohs(v.port)), Or(name)});
    out->json.push_back({{"id", id},
                         {"ip", addr},
                         {"port", ntohs(v.port)},
                         {"address", HostPort(v.addr, ntohs(v.port))},
                         {"workload", name.empty() ? Json() : Json(name)}});
  }
  return Status::Ok();
}

Status Slots(const PinnedMap& m, const RawDump& d, const std::string& dir, const Names& names, const DumpOptions& opts,
             Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(weft_slot_key), "weft_slot_key", sizeof(uint32_t), "__u32"));
  auto svcs = ServiceIndex(dir, names);
  auto bes = BackendIndex(dir, names);
  auto be_addr = [&](uint32_t id) {
    auto it = bes.find(id);
    return it == bes.end() ? std::string("?") : it->second.address;
  };
  if (opts.raw) {
    std::vector<std::pair<weft_slot_key, uint32_t>> kv;
    for (const auto& e : d.entries) kv.emplace_back(Load<weft_slot_key>(e.key.data()), Load<uint32_t>(e.value.data()));
    std::sort(kv.begin(), kv.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.svc_id, a.first.gen, a.first.slot) < std::tie(b.first.svc_id, b.first.gen, b.first.slot);
    });
    out->rows.push_back({"SVC-ID", "GEN", "SLOT", "BACKEND-ID", "ADDRESS"});
    for (const auto& [k, be] : kv) {
      out->rows.push_back(
          {std::to_string(k.svc_id), std::to_string(k.gen), std::to_string(k.slot), std::to_string(be), be_addr(be)});
      out->json.push_back({{"svc_id", k.svc_id}, {"gen", k.gen}, {"slot", k.slot}, {"backend_id", be}});
    }
    return Status::Ok();
  }
  std::map<std::pair<uint32_t, uint16_t>, std::map<uint32_t, uint32_t>> groups;  // (svc, gen) -> backend -> slots
  for (const auto& e : d.entries) {
    auto k = Load<weft_slot_key>(e.key.data());
    ++groups[{k.svc_id, k.gen}][Load<uint32_t>(e.value.data())];
  }
  out->rows.push_back({"SVC-ID", "SERVICE", "GEN", "STATE", "SLOTS", "BACKENDS (id address x slots)"});
  for (const auto& [sg, bmap] : groups) {
    auto it = svcs.find(sg.first);
    std::string state = it == svcs.end() ? "orphan" : (it->second.gen == sg.second ? "current" : "stale");
    uint32_t total = 0;
    std::vector<std::string> parts;
    Json jb = Json::array();
    for (const auto& [be, n] : bmap) {
      total += n;
      parts.push_back(std::to_string(be) + " " + be_addr(be) + " x" + std::to_string(n));
      auto bi = bes.find(be);
      jb.push_back({{"id", be},
                    {"address", bi == bes.end() ? Json() : Json(bi->second.address)},
                    {"workload", bi == bes.end() || bi->second.name.empty() ? Json() : Json(bi->second.name)},
                    {"slots", n}});
    }
    out->rows.push_back({std::to_string(sg.first), it == svcs.end() ? "-" : it->second.label, std::to_string(sg.second),
                         state, std::to_string(total), Join(parts, ", ")});
    out->json.push_back({{"svc_id", sg.first},
                         {"service", it == svcs.end() ? Json() : Json(it->second.label)},
                         {"gen", sg.second},
                         {"state", state},
                         {"slots", total},
                         {"backends", jb}});
  }
  out->note = std::to_string(d.entries.size()) + " slots in " + std::to_string(groups.size()) +
              " service generations (--raw for every slot)";
  return Status::Ok();
}

Status SvcStats(const PinnedMap& m, const RawDump& d, const std::string& dir, const Names& names, const DumpOptions&,
                Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(weft_svc_stats), "weft_svc_stats"));
  auto svcs = ServiceIndex(dir, names);
  out->rows.push_back({"SVC-ID", "SERVICE", "CONNECTS", "NO-BACKEND"});
  for (const auto& e : d.entries) {
    uint32_t id = Load<uint32_t>(e.key.data());
    auto s = SumPerCpu<weft_svc_stats>(d, e, [](weft_svc_stats& a, const weft_svc_stats& b) {
      a.connects += b.connects;
      a.no_backend += b.no_backend;
    });
    auto it = svcs.find(id);
    if (it == svcs.end() && s.connects == 0 && s.no_backend == 0) continue;  // unused array slot
    std::string label = it == svcs.end() ? "" : it->second.label;
    out->rows.push_back({std::to_string(id), Or(label), std::to_string(s.connects), std::to_string(s.no_backend)});
    out->json.push_back({{"svc_id", id},
                         {"service", label.empty() ? Json() : Json(label)},
                         {"connects", s.connects},
                         {"no_backend", s.no_backend}});
  }
  out->note = "summed over " + std::to_string(d.ncpus) + " CPUs; ids with no service and zero counts left out";
  return Status::Ok();
}

Status BeStats(const PinnedMap& m, const RawDump& d, const std::string& dir, const Names& names, const DumpOptions&,
               Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(weft_backend_stats), "weft_backend_stats"));
  auto bes = BackendIndex(dir, names);
  out->rows.push_back({"BACKEND-ID", "ADDRESS", "WORKLOAD", "CONNECTS"});
  for (const auto& e : d.entries) {
    uint32_t id = Load<uint32_t>(e.key.data());
    uint64_t n = SumU64(d, e);
    auto it = bes.find(id);
    if (it == bes.end() && n == 0) continue;
    std::string addr = it == bes.end() ? "" : it->second.address, name = it == bes.end() ? "" : it->second.name;
    out->rows.push_back({std::to_string(id), Or(addr), Or(name), std::to_string(n)});
    out->json.push_back({{"id", id},
                         {"address", addr.empty() ? Json() : Json(addr)},
                         {"workload", name.empty() ? Json() : Json(name)},
                         {"connects", n}});
  }
  out->note = "summed over " + std::to_string(d.ncpus) + " CPUs; ids with no backend and zero counts left out";
  return Status::Ok();
}

// A per-CPU array of u64 counters indexed by an enum.
Status Counters(const PinnedMap& m, const RawDump& d, const char* what,
                const std::function<std::string(uint32_t)>& name, Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(uint64_t), "__u64"));
  out->rows.push_back({what, "COUNT"});
  for (const auto& e : d.entries) {
    uint32_t i = Load<uint32_t>(e.key.data());
    uint64_t n = SumU64(d, e);
    out->rows.push_back({name(i), std::to_string(n)});
    out->json.push_back({{"index", i}, {"name", name(i)}, {"count", n}});
  }
  out->note = "summed over " + std::to_string(d.ncpus) + " CPUs";
  return Status::Ok();
}

Status SockRev(const PinnedMap& m, const RawDump& d, const std::string&, const Names& names, const DumpOptions&,
              Decoded* out) {
  WEFT_RETURN_IF_ERROR(
      CheckLayout(m, sizeof(weft_sock_rev_key), "weft_sock_rev_key", sizeof(weft_sock_rev_val), "weft_sock_rev_val"));
  out->rows.push_back({"SOCKET-COOKIE", "BACKEND", "WORKLOAD", "VIP", "SERVICE"});
  for (const auto& e : d.entries) {
    auto k = Load<weft_sock_rev_key>(e.key.data());
    auto v = Load<weft_sock_rev_val>(e.value.data());
    std::string be = HostPort(k.addr, ntohs(k.port)), vip = HostPort(v.vip, ntohs(v.vport));
    std::string wl = Lookup(names.workloads, Addr(k.addr)), svc = Lookup(names.vips, Addr(v.vip));
    out->rows.push_back({std::to_string(k.cookie), be, Or(wl), vip, Or(svc)});
    out->json.push_back({{"cookie", k.cookie},
                         {"backend", be},
                         {"workload", wl.empty() ? Json() : Json(wl)},
                         {"vip", vip},
                         {"service", svc.empty() ? Json() : Json(svc)}});
  }
  return Status::Ok();
}

Status IdentityMap(const PinnedMap& m, const RawDump& d, const std::string&, const Names& names, const DumpOptions&,
                   Decoded* out) {
  WEFT_RETURN_IF_ERROR(
      CheckLayout(m, sizeof(weft_ipcache_key), "weft_ipcache_key", sizeof(weft_ipcache_val), "weft_ipcache_val"));
  out->rows.push_back({"PREFIX", "IDENTITY", "WORKLOAD", "FLAGS"});
  for (const auto& e : d.entries) {
    auto k = Load<weft_ipcache_key>(e.key.data());
    auto v = Load<weft_ipcache_val>(e.value.data());
    IpAddr ip = IpAddr::FromBytes(k.addr);
    uint32_t len = k.prefixlen;
    if (ip.is_v4() && len >= 96) len -= 96;  // v4-mapped: show the v4 prefix
    std::string prefix = ip.ToString() + "/" + std::to_string(len);
    bool host = (ip.is_v4() && len == 32) || (!ip.is_v4() && len == 128);
    std::string wl = host ? Lookup(names.workloads, ip.ToString()) : "";
    out->rows.push_back({prefix, Identity(v.identity), Or(wl), std::to_string(v.flags)});
    out->json.push_back({{"prefix", prefix},
                         {"identity", v.identity},
                         {"workload", wl.empty() ? Json() : Json(wl)},
                         {"flags", v.flags}});
  }
  return Status::Ok();
}

Status Policy(const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&,
              Decoded* out) {
  WEFT_RETURN_IF_ERROR(
      CheckLayout(m, sizeof(weft_policy_key), "weft_policy_key", sizeof(weft_policy_val), "weft_policy_val"));
  std::vector<std::pair<weft_policy_key, weft_policy_val>> kv;
  for (const auto& e : d.entries)
    kv.emplace_back(Load<weft_policy_key>(e.key.data()), Load<weft_policy_val>(e.value.data()));
  std::sort(kv.begin(), kv.end(), [](const auto& a, const auto& b) {
    const auto &x = a.first, &y = b.first;
    return std::tie(x.ep_id, x.direction, x.peer_identity, x.port, x.proto) <
           std::tie(y.ep_id, y.direction, y.peer_identity, y.port, y.proto);
  });
  out->rows.push_back({"EP-ID", "DIR", "PEER-IDENTITY", "PORT", "PROTO", "VERDICT", "POLICY-ID"});
  for (const auto& [k, v] : kv) {
    out->rows.push_back({std::to_string(k.ep_id), node::DirectionName(k.direction), Identity(k.peer_identity),
                         k.port ? std::to_string(k.port) : "*", node::ProtoName(k.proto), node::VerdictName(v.verdict),
                         std::to_string(v.policy_id)});
    out->json.push_back({{"ep_id", k.ep_id},
                         {"direction", node::DirectionName(k.direction)},
                         {"peer_identity", k.peer_identity},
                         {"port", k.port},
                         {"proto", node::ProtoName(k.proto)},
                         {"verdict", node::VerdictName(v.verdict)},
                         {"policy_id", v.policy_id},
                         {"reason", node::DropReasonName(v.reason ? v.reason : (v.verdict == WEFT_VERDICT_DENY ? WEFT_DROP_POLICY_DENIED : 0))}});
  }
  return Status::Ok();
}

Status Conntrack(const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&,
                 Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(weft_ct_key), "weft_ct_key", sizeof(weft_ct_val), "weft_ct_val"));
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);  // bpf_ktime_get_coarse_ns's clock
  const uint64_t now_ns = static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
  out->rows.push_back({"SOURCE", "DESTINATION", "PROTO", "VERDICT", "POLICY-ID", "PEER-IDENTITY", "AGE"});
  for (const auto& e : d.entries) {
    auto k = Load<weft_ct_key>(e.key.data());
    auto v = Load<weft_ct_val>(e.value.data());
    std::string src = HostPort(k.saddr, ntohs(k.sport)), dst = HostPort(k.daddr, ntohs(k.dport));
    double age = now_ns > v.created_ns ? static_cast<double>(now_ns - v.created_ns) / 1e9 : 0.0;
    char ages[32];
    std::snprintf(ages, sizeof(ages), "%.1fs", age);
    out->rows.push_back({src, dst, node::ProtoName(k.proto), node::VerdictName(v.verdict), std::to_string(v.policy_id),
                         Identity(v.peer_identity), ages});
    out->json.push_back({{"source", src},
                         {"destination", dst},
                         {"proto", node::ProtoName(k.proto)},
                         {"verdict", node::VerdictName(v.verdict)},
                         {"policy_id", v.policy_id},
                         {"peer_identity", v.peer_identity},
                         {"policy_rev", v.policy_rev},
                         {"flow_slot", v.flow_slot},
                         {"created_ns", v.created_ns},
                         {"age_seconds", age}});
  }
  return Status::Ok();
}

// weft_flows (key -> slot) joined with weft_flow_ctr[slot], summed over CPUs.
Status Flows(const PinnedMap& m, const RawDump& d, const std::string& maps_dir, const Names&, const DumpOptions&,
             Decoded* out) {
  WEFT_RETURN_IF_ERROR(
      CheckLayout(m, sizeof(weft_flow_key), "weft_flow_key", sizeof(weft_flow_slot), "weft_flow_slot"));
  auto ctr = OpenPinnedMap(maps_dir, WEFT_MAP_FLOW_COUNTERS);
  if (!ctr.ok()) return ctr.status();
  WEFT_RETURN_IF_ERROR(CheckLayout(*ctr, sizeof(uint32_t), "__u32", sizeof(weft_flow_val), "weft_flow_val"));
  out->rows.push_back({"SRC-IDENTITY", "DST-IDENTITY", "DPORT", "PROTO", "DIRECTION", "VERDICT", "REASON",
                       "POLICY-ID", "SLOT", "CONNECTIONS", "PACKETS", "BYTES"});
  for (const auto& e : d.entries) {
    auto k = Load<weft_flow_key>(e.key.data());
    auto slot = Load<weft_flow_slot>(e.value.data()).slot;
    std::vector<uint8_t> buf(ValueBufferSize(*ctr));
    auto found = LookupElem(*ctr, &slot, buf.data());
    if (!found.ok()) return found.status();
    if (!*found)
      return Status::Error(std::string(WEFT_MAP_FLOWS) + ": slot " + std::to_string(slot) + " is outside " +
                           WEFT_MAP_FLOW_COUNTERS + " (capacity " + std::to_string(ctr->info.max_entries) + ")");
    const size_t stride = (sizeof(weft_flow_val) + 7) & ~size_t{7};
    auto sum = SumPerCpuU64(buf, static_cast<int>(buf.size() / stride), stride, sizeof(weft_flow_val));
    weft_flow_val v{sum[0], sum[1], sum[2]};
    out->rows.push_back({Identity(k.src_identity), Identity(k.dst_identity), std::to_string(k.dport), node::ProtoName(k.proto),
                         node::DirectionName(k.direction), node::VerdictName(k.verdict), node::DropReasonName(k.reason), std::to_string(k.policy_id),
                         std::to_string(slot), std::to_string(v.connections), std::to_string(v.packets),
                         std::to_string(v.bytes)});
    out->json.push_back({{"src_identity", k.src_identity},
                         {"dst_identity", k.dst_identity},
                         {"dport", k.dport},
                         {"proto", node::ProtoName(k.proto)},
                         {"direction", node::DirectionName(k.direction)},
                         {"verdict", node::VerdictName(k.verdict)},
                         {"reason", node::DropReasonName(k.reason)},
                         {"policy_id", k.policy_id},
                         {"slot", slot},
                         {"connections", v.connections},
                         {"packets", v.packets},
                         {"bytes", v.bytes}});
  }
  out->note = "counters from " WEFT_MAP_FLOW_COUNTERS ", summed over the possible CPUs";
  return Status::Ok();
}

// weft_flow_ctr by slot: only slots that counted something (the keys are in
// weft_flows).
Status FlowCounters(const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&,
                    Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(weft_flow_val), "weft_flow_val"));
  out->rows.push_back({"SLOT", "CONNECTIONS", "PACKETS", "BYTES"});
  size_t zero = 0;
  for (const auto& e : d.entries) {
    auto v = SumPerCpu<weft_flow_val>(d, e, [](weft_flow_val& a, const weft_flow_val& b) {
      a.connections += b.connections;
      a.packets += b.packets;
      a.bytes += b.bytes;
    });
    if (v.connections == 0 && v.packets == 0 && v.bytes == 0) {
      ++zero;
      continue;
    }
    auto slot = Load<uint32_t>(e.key.data());
    out->rows.push_back({std::to_string(slot), std::to_string(v.connections), std::to_string(v.packets),
                         std::to_string(v.bytes)});
    out->json.push_back({{"slot", slot}, {"connections", v.connections}, {"packets", v.packets}, {"bytes", v.bytes}});
  }
  out->note = std::to_string(zero) + " unused slots not shown; the keys are in " WEFT_MAP_FLOWS;
  return Status::Ok();
}

Status Endpoints(const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&,
                 Decoded* out) {
  WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(weft_endpoint), "weft_endpoint"));
  std::map<uint32_t, weft_endpoint> kv;
  for (const auto& e : d.entries) kv[Load<uint32_t>(e.key.data())] = Load<weft_endpoint>(e.value.data());
  out->rows.push_back({"IFINDEX", "EP-ID", "IDENTITY", "ENFORCE-INGRESS", "ENFORCE-EGRESS", "SOURCES"});
  bool unchecked = false;
  for (const auto& [ifi, v] : kv) {
    // The addresses the pod may send from (source validation); none: not
    // checked (an entry migrated from ABI 1 until the agent rewrites it).
    std::vector<std::string> addrs;
    for (uint32_t i = 0; i < v.n_addrs && i < WEFT_EP_MAX_ADDRS; ++i) addrs.push_back(Addr(v.addrs[i]));
    unchecked |= addrs.empty();
    out->rows.push_back({std::to_string(ifi), std::to_string(v.ep_id), Identity(v.identity),
                         v.enforce_ingress ? "yes" : "no", v.enforce_egress ? "yes" : "no",
                         addrs.empty() ? "(not checked)" : Join(addrs)});
    out->json.push_back({{"ifindex", ifi},
                         {"ep_id", v.ep_id},
                         {"identity", v.identity},
                         {"enforce_ingress", v.enforce_ingress != 0},
                         {"enforce_egress", v.enforce_egress != 0},
                         {"source_check", !addrs.empty()},
                         {"addresses", addrs}});
  }
  if (unchecked)
    out->note = "(not checked): the entry has no addresses (migrated from ABI 1); the agent's next apply writes them";
  return Status::Ok();
}

Status HexDump(const PinnedMap& m, const RawDump& d, Decoded* out) {
  out->rows.push_back({"KEY", d.percpu ? "VALUE (per CPU)" : "VALUE"});
  for (const auto& e : d.entries) {
    std::string val;
    if (d.percpu) {
      for (int c = 0; c < d.ncpus; ++c) {
        std::vector<uint8_t> one(e.value.begin() + c * d.stride, e.value.begin() + c * d.stride + d.value_size);
        val += (c ? " " : "") + Hex(one, d.value_size);
      }
    } else {
      val = Hex(e.value, d.value_size);
    }
    out->rows.push_back({Hex(e.key, d.key_size), val});
    out->json.push_back({{"key", Hex(e.key, d.key_size)}, {"value", val}});
  }
  out->note = "no decoder for " + m.name + " (" + m.type_name() + "): hex";
  return Status::Ok();
}

const std::map<std::string, Decoder>& Decoders() {
  static const std::map<std::string, Decoder> k = {
      {WEFT_MAP_SERVICES, Services},
      {WEFT_MAP_BACKENDS, Backends},
      {WEFT_MAP_SLOTS, Slots},
      {WEFT_MAP_SVC_STATS, SvcStats},
      {WEFT_MAP_BACKEND_STATS, BeStats},
      {WEFT_MAP_LB_STATS, [](const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&,
                             Decoded* out) { return Counters(m, d, "COUNTER", node::LbStatName, out); }},
      {WEFT_MAP_SOCK_REV, SockRev},
      {WEFT_MAP_IDENTITY, IdentityMap},
      {WEFT_MAP_POLICY, Policy},
      {WEFT_MAP_CT, Conntrack},
      {WEFT_MAP_FLOWS, Flows},
      {WEFT_MAP_FLOW_COUNTERS, FlowCounters},
      {WEFT_MAP_ENDPOINTS, Endpoints},
      {WEFT_MAP_META,
       [](const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&, Decoded* out) {
         WEFT_RETURN_IF_ERROR(CheckLayout(m, sizeof(uint32_t), "__u32", sizeof(weft_meta), "weft_meta"));
         out->rows.push_back({"ABI-VERSION", "THIS-BUILD"});
         for (const auto& e : d.entries) {
           auto v = Load<weft_meta>(e.value.data());
           out->rows.push_back({std::to_string(v.abi_version), std::to_string(WEFT_ABI_VERSION)});
           out->json.push_back({{"abi_version", v.abi_version}, {"this_build", WEFT_ABI_VERSION}});
         }
         return Status::Ok();
       }},
      {WEFT_MAP_DROP_STATS, [](const PinnedMap& m, const RawDump& d, const std::string&, const Names&,
                               const DumpOptions&, Decoded* out) { return Counters(m, d, "REASON", node::DropReasonName, out); }},
      {WEFT_MAP_EVENT_STATS,
       [](const PinnedMap& m, const RawDump& d, const std::string&, const Names&, const DumpOptions&, Decoded* out) {
         return Counters(
             m, d, "EVENT",
             [](uint32_t i) -> std::string {
               return i == WEFT_EVSTAT_SENT ? "sent" : i == WEFT_EVSTAT_LOST ? "lost" : "event_" + std::to_string(i);
             },
             out);
       }},
  };
  return k;
}

}  // namespace


const std::vector<std::string>& KnownMaps() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v;
    for (const auto& [name, _] : Decoders()) v.push_back(name);
    return v;
  }();
  return k;
}

Result<Decoded> DecodeMap(const PinnedMap& m, const std::string& maps_dir, const Names& names,
                          const DumpOptions& opts) {
  Decoded out;
  if (m.info.type == BPF_MAP_TYPE_SK_STORAGE || m.info.type == BPF_MAP_TYPE_RINGBUF) {
    out.note = m.name + " is a " + m.type_name() +
               " map: its entries cannot be listed from user space (per-socket storage / event stream)";
    return out;
  }
  auto d = ReadAll(m);
  if (!d.ok()) return d.status();
  auto it = Decoders().find(m.name);
  Status st = it == Decoders().end() ? HexDump(m, *d, &out) : it->second(m, *d, maps_dir, names, opts, &out);
  if (!st.ok()) return st;
  return out;
}

Result<Names> NamesFromYaml(const std::string& path) {
  Names n;
  try {
    for (const YAML::Node& doc : YAML::LoadAllFromFile(path)) {
      if (!doc.IsMap() || !doc["kind"]) continue;
      std::string kind = doc["kind"].as<std::string>();
      const YAML::Node meta = doc["metadata"];
      if (!meta || !meta["name"]) continue;
      std::string name = meta["name"].as<std::string>();
      std::string ns = meta["namespace"] ? meta["namespace"].as<std::string>() : "default";
      const YAML::Node spec = doc["spec"];
      if (!spec) continue;
      if (kind == "Service") {
        std::vector<std::string> ips;
        if (spec["clusterIPs"] && spec["clusterIPs"].IsSequence())
          for (const auto& ip : spec["clusterIPs"]) ips.push_back(ip.as<std::string>());
        if (spec["clusterIP"]) ips.push_back(spec["clusterIP"].as<std::string>());
        for (const auto& ip : ips)
          if (auto a = IpAddr::Parse(ip)) n.vips[a->ToString()] = ns + "/" + name;
      } else if (kind == "WorkloadEntry" && spec["address"]) {
        if (auto a = IpAddr::Parse(spec["address"].as<std::string>())) n.workloads[a->ToString()] = name;
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::Error("read names from " + path + ": " + e.what());
  }
  return n;
}

}  // namespace weft::cli::bpf
