// weft-policybench: programs the agent's real TC policy datapath
// (agent/policy/PolicyDatapath) for bench/run_policy.sh, without a controller.
//
//   weft-policybench program --pin-root R --node N --client IP --server IP
//                            --entries S --identities M [--port 8080]
//     The node config the controller would send for two local pods: the
//     client (no policy applies: an endpoint with only weft_tc_from_pod, the
//     source validation, attached) and the
//     server (enforced ingress, S policy entries: S-1 ALLOW entries for other
//     identities, then the one for the client's identity, port --port). The
//     identity cache holds the two pods plus M other /32s (100.64.0.0/10,
//     spread over the S-1 other identities). Run it in the node's network
//     namespace: the agent finds each pod's host-side veth by a route lookup.
//     The tcx links and pins stay when it exits (as when an agent is killed).
//   weft-policybench costs --pin-root R --node N --client IP --server IP
//                          [--port 8080] [--repeat 200000] [--new-flows 2000]
//     The programmed datapath's cost per packet, in ns per program run, from
//     BPF_PROG_TEST_RUN of the pinned programs on synthetic packets (no
//     scheduler, no other traffic: far less noisy than the rate cells):
//     a known flow's packet entering the server (conntrack forward hit), its
//     reply leaving the server (reply hit), a new flow's SYN (identity,
//     policy, conntrack create, aggregate, event: distinct source ports, one
//     run each), and the program on an endpoint that enforces nothing (its
//     only program: endpoint lookup + source validation), the same with the
//     source check off (the endpoint entry rewritten without addresses for
//     the measurement, then restored: the check's own cost is the
//     difference), and a packet with a forged source (the drop: flow record,
//     event, counter). One JSON line.
//     Run it in the node's network namespace, after `program`.
//   weft-policybench cleanup --pin-root R --node N
//     Detaches the tcx links and removes the pins (CleanupPolicy + maps).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/policy/policy_datapath.hpp"
#include "weft/bpf_abi.h"
#include "weft/unique_fd.hpp"

namespace {

using weft::policy::PolicyDatapath;
using weft::policy::PolicyOptions;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "weft-policybench: %s\n", msg.c_str());
  std::exit(1);
}

std::string V4Bytes(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) Die("not an IPv4 address: " + ip);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

std::string V4Bytes(uint32_t host_order) {
  uint32_t n = htonl(host_order);
  return std::string(reinterpret_cast<const char*>(&n), 4);
}

struct ProgramOpts {
  std::string pin_root, node, client, server;
  uint32_t entries = 10, identities = 100000, port = 8080;
};

constexpr uint32_t kClientIdentity = WEFT_IDENTITY_FIRST_DYNAMIC;
constexpr uint32_t kServerIdentity = WEFT_IDENTITY_FIRST_DYNAMIC + 1;
constexpr uint32_t kFirstOther = WEFT_IDENTITY_FIRST_DYNAMIC + 2;

weft::v1::NodeConfig BuildConfig(const ProgramOpts& o) {
  weft::v1::NodeConfig c;
  auto* pn = c.add_policy_names();
  pn->set_id(1);
  pn->set_name("bench/allow-clients");
  pn->set_action("ALLOW");

  auto add_workload = [&](const std::string& name, const std::string& ip, uint32_t identity) {
    auto* w = c.add_local_workloads();
    w->set_namespace_("bench");
    w->set_name(name);
    w->add_addresses(V4Bytes(ip));
    w->set_service_account(name);
    w->set_spiffe_id("spiffe://cluster.local/ns/bench/sa/" + name);
    w->set_identity(identity);
    auto* id = c.add_identities();
    id->set_id(identity);
    id->set_spiffe_id(w->spiffe_id());
    id->set_namespace_("bench");
    id->set_service_account(name);
    auto* e = c.add_identity_cache();
    e->set_prefix(V4Bytes(ip));
    e->set_prefix_len(32);
    e->set_identity(identity);
    return w;
  };
  add_workload("client", o.client, kClientIdentity);
  auto* server = add_workload("server", o.server, kServerIdentity);
  server->set_enforce_ingress(true);
  server->add_policies("bench/allow-clients");
  auto allow = [&](uint32_t peer) {
    auto* pe = server->add_policy();
    pe->set_peer_identity(peer);
    pe->set_port(o.port);
    pe->set_protocol(weft::v1::TCP);
    pe->set_direction(weft::v1::INGRESS);
    pe->set_verdict(weft::v1::ALLOW);
    pe->set_policy_id(1);
  };
  const uint32_t others = o.entries - 1;
  for (uint32_t i = 0; i < others; i++) allow(kFirstOther + i);
  allow(kClientIdentity);
  for (uint32_t i = 0; i < others; i++) {
    auto* id = c.add_identities();
    id->set_id(kFirstOther + i);
    id->set_namespace_("bench");
    id->set_service_account("peer-" + std::to_string(i));
    id->set_spiffe_id("spiffe://cluster.local/ns/bench/sa/peer-" + std::to_string(i));
  }
  const uint32_t base = (100u << 24) | (64u << 16);  // 100.64.0.0/10
  for (uint32_t i = 0; i < o.identities; i++) {
    auto* e = c.add_identity_cache();
    e->set_prefix(V4Bytes(base + i));
    e->set_prefix_len(32);
    e->set_identity(others ? kFirstOther + (i % others) : kClientIdentity);
  }
  return c;
}

int Program(const ProgramOpts& o) {
  if (o.entries < 1) Die("--entries must be >= 1");
  if (o.identities > (1u << 22)) Die("--identities must be <= 4194304 (100.64.0.0/10)");
  PolicyOptions po;
  po.pin_root = o.pin_root;
  po.node = o.node;
  po.capacities.policy = std::max<uint32_t>(WEFT_DEFAULT_MAX_POLICY_ENTRIES, o.entries + 16);
  po.capacities.identity = std::max<uint32_t>(WEFT_DEFAULT_MAX_IDENTITY_ENTRIES, o.identities + 16);
  po.lock_node = true;
  auto t0 = std::chrono::steady_clock::now();
  auto dp = PolicyDatapath::Load(po);
  if (!dp.ok()) Die("load: " + dp.status().message());
  if (auto st = (*dp)->Attach(); !st.ok()) Die("attach: " + st.message());
  auto config = BuildConfig(o);
  if (auto st = (*dp)->Apply(config, 1); !st.ok()) Die("apply: " + st.message());
  if ((*dp)->has_unplaced()) Die("a pod's host-side interface was not found (run in the node netns)");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"kind\":\"policy_program\",\"entries\":%u,\"identities\":%u,\"seconds\":%.3f,\"endpoints\":%zu}\n",
              o.entries, o.identities, secs, (*dp)->endpoints().size());
  return 0;
}

// ---- costs -----------------------------------------------------------------------
struct CostOpts {
  std::string pin_root, node, client, server;
  uint32_t port = 8080, repeat = 200000, new_flows = 2000;
};

// Ethernet + IPv4 (no options) + TCP (no options) + `payload` bytes.
std::vector<uint8_t> TcpPacket(const std::string& src, const std::string& dst, uint16_t sport, uint16_t dport,
                               uint8_t flags, size_t payload) {
  std::vector<uint8_t> p(14 + 20 + 20 + payload, 0);
  std::memset(p.data(), 0x02, 6);
  std::memset(p.data() + 6, 0x04, 6);
  p[12] = 0x08, p[13] = 0x00;
  uint8_t* ip = p.data() + 14;
  ip[0] = 0x45;
  const uint16_t tot = htons(static_cast<uint16_t>(20 + 20 + payload));
  std::memcpy(ip + 2, &tot, 2);
  ip[8] = 64, ip[9] = IPPROTO_TCP;
  std::memcpy(ip + 12, V4Bytes(src).data(), 4);
  std::memcpy(ip + 16, V4Bytes(dst).data(), 4);
  uint8_t* th = ip + 20;
  const uint16_t sp = htons(sport), dp = htons(dport);
  std::memcpy(th, &sp, 2);
  std::memcpy(th + 2, &dp, 2);
  th[12] = 5 << 4, th[13] = flags, th[14] = 0xff, th[15] = 0xff;
  return p;
}

// Average ns per run of `repeat` runs (the kernel's own timing of the loop).
double RunNs(int prog_fd, uint32_t ifindex, const std::vector<uint8_t>& pkt, uint32_t repeat, uint32_t* retval) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  std::vector<uint8_t> out(pkt.size() + 256);
  bpf_test_run_opts o{};
  o.sz = sizeof(o);
  o.data_in = pkt.data();
  o.data_size_in = static_cast<__u32>(pkt.size());
  o.data_out = out.data();
  o.data_size_out = static_cast<__u32>(out.size());
  o.ctx_in = &ctx;
  o.ctx_size_in = sizeof(ctx);
  o.repeat = repeat;
  if (bpf_prog_test_run_opts(prog_fd, &o) != 0) Die(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
  if (retval) *retval = o.retval;
  return static_cast<double>(o.duration);
}

int Costs(const CostOpts& o) {
  const std::string node_dir = o.pin_root + "/" + o.node;
  weft::UniqueFd from(bpf_obj_get((node_dir + "/progs/weft_tc_from_pod").c_str()));
  weft::UniqueFd to(bpf_obj_get((node_dir + "/progs/weft_tc_to_pod").c_str()));
  weft::UniqueFd eps(bpf_obj_get((node_dir + "/maps/" WEFT_MAP_ENDPOINTS).c_str()));
  if (!from || !to || !eps) Die("open the pins under " + node_dir + " (run `program` first): " + std::strerror(errno));
  uint32_t client_if = 0, server_if = 0, key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(eps.get(), prev, &next) == 0) {
    key = next;
    prev = &key;
    weft_endpoint ep{};
    if (bpf_map_lookup_elem(eps.get(), &key, &ep) != 0) continue;
    if (ep.identity == kClientIdentity) client_if = key;
    if (ep.identity == kServerIdentity) server_if = key;
  }
  if (!client_if || !server_if) Die("the client's or the server's endpoint is not in " WEFT_MAP_ENDPOINTS);
  weft_endpoint client_ep{};
  if (bpf_map_lookup_elem(eps.get(), &client_if, &client_ep) != 0) Die("read the client's endpoint");
  const uint16_t port = static_cast<uint16_t>(o.port);
  constexpr uint8_t kSyn = 0x02, kAck = 0x10;
  uint32_t rv = 0;
  // A known flow: its SYN once (conntrack entry), then its packets.
  RunNs(to.get(), server_if, TcpPacket(o.client, o.server, 40000, port, kSyn, 0), 1, &rv);
  if (rv != TC_ACT_OK) Die("the client's SYN is not allowed (return " + std::to_string(rv) + "): wrong --port?");
  const double fwd = RunNs(to.get(), server_if, TcpPacket(o.client, o.server, 40000, port, kAck, 64), o.repeat, &rv);
  const double rep = RunNs(from.get(), server_if, TcpPacket(o.server, o.client, port, 40000, kAck, 64), o.repeat, &rv);
  const double idle = RunNs(from.get(), client_if, TcpPacket(o.client, o.server, 40000, port, kAck, 64), o.repeat, &rv);
  if (rv != TC_ACT_OK)
    Die("the client's own packet does not pass its source check (return " + std::to_string(rv) + ")");
  // The same with the source check off (n_addrs = 0), then restored.
  weft_endpoint unchecked = client_ep;
  unchecked.n_addrs = 0;
  if (bpf_map_update_elem(eps.get(), &client_if, &unchecked, BPF_EXIST) != 0) Die("rewrite the client's endpoint");
  const double idle_unchecked =
      RunNs(from.get(), client_if, TcpPacket(o.client, o.server, 40000, port, kAck, 64), o.repeat, &rv);
  if (bpf_map_update_elem(eps.get(), &client_if, &client_ep, BPF_EXIST) != 0) Die("restore the client's endpoint");
  // A forged source: the server's address leaving the client (dropped and counted).
  const double forged = RunNs(from.get(), client_if, TcpPacket(o.server, o.client, 40000, port, kAck, 64),
                              std::min<uint32_t>(o.repeat, 20000), &rv);
  if (rv != TC_ACT_SHOT) Die("a forged source passed (return " + std::to_string(rv) + ")");
  double sum = 0;
  for (uint32_t i = 0; i < o.new_flows; ++i)
    sum += RunNs(to.get(), server_if,
                 TcpPacket(o.client, o.server, static_cast<uint16_t>(20000 + i % 20000), port, kSyn, 0), 1, &rv);
  const double fresh = o.new_flows ? sum / o.new_flows : 0;
  std::printf(
      "{\"kind\":\"policy_costs\",\"ns_known_flow_forward\":%.0f,\"ns_known_flow_reply\":%.0f,"
      "\"ns_new_flow\":%.0f,\"ns_endpoint_enforcing_nothing\":%.0f,\"ns_enforcing_nothing_unchecked\":%.0f,"
      "\"ns_source_check\":%.0f,\"ns_forged_source_drop\":%.0f,\"repeat\":%u,\"new_flows\":%u}\n",
      fwd, rep, fresh, idle, idle_unchecked, idle - idle_unchecked, forged, o.repeat, o.new_flows);
  return 0;
}

int Cleanup(const std::string& pin_root, const std::string& node) {
  auto r = weft::policy::CleanupPolicy(pin_root, node);
  if (!r.ok()) Die("cleanup: " + r.status().message());
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(pin_root) / node, ec);
  if (ec) Die("remove " + pin_root + "/" + node + ": " + ec.message());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weft-policybench: program the TC policy datapath for bench/run_policy.sh"};
  app.require_subcommand(1);
  ProgramOpts po;
  auto* prog = app.add_subcommand("program", "program two pods' policy (run in the node netns)");
  prog->add_option("--pin-root", po.pin_root)->required();
  prog->add_option("--node", po.node)->required();
  prog->add_option("--client", po.client, "client pod IPv4")->required();
  prog->add_option("--server", po.server, "server pod IPv4")->required();
  prog->add_option("--entries", po.entries, "policy entries of the server");
  prog->add_option("--identities", po.identities, "extra identity-cache entries");
  prog->add_option("--port", po.port);
  CostOpts co;
  auto* costs = app.add_subcommand("costs", "ns per program run, by BPF_PROG_TEST_RUN (run in the node netns)");
  costs->add_option("--pin-root", co.pin_root)->required();
  costs->add_option("--node", co.node)->required();
  costs->add_option("--client", co.client, "client pod IPv4")->required();
  costs->add_option("--server", co.server, "server pod IPv4")->required();
  costs->add_option("--port", co.port);
  costs->add_option("--repeat", co.repeat, "runs per known-flow case")->check(CLI::Range(1u, 100000000u));
  costs->add_option("--new-flows", co.new_flows, "new flows (one run each)")->check(CLI::Range(0u, 1000000u));
  std::string c_root, c_node;
  auto* clean = app.add_subcommand("cleanup", "detach the tcx links, remove pins (run in the node netns)");
  clean->add_option("--pin-root", c_root)->required();
  clean->add_option("--node", c_node)->required();
  CLI11_PARSE(app, argc, argv);
  // stdout carries the one JSON line; the datapath's log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("policybench"));
  if (*prog) return Program(po);
  if (*costs) return Costs(co);
  if (*clean) return Cleanup(c_root, c_node);
  return 1;
}
