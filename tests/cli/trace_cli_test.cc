// `weftctl trace` against a real tc_policy + sock_lb datapath
// (tests/cli/tc_topology.hpp): over a table of cases (allowed, DENY, default
// deny, port rules, unknown identity, UDP, services: one backend, none, random
// over an allowed and a denied backend, maglev) the trace's verdict agrees with
// what real connections do; tracing has no side effects on the maps; unknown
// names exit 1 with close names, unreadable pins exit 2. Label `kernel`,
// RUN_SERIAL: needs root + BPF; skips without them, fails instead under CI=true.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>

#include "tests/cli/tc_topology.hpp"
#include "weft/flow_aggregates.hpp"

namespace weft::clitest {
namespace {

using namespace std::chrono_literals;

struct Case {
  const char* name;
  const char* from;
  std::string to;
  const char* proto;
  const char* verdict;  // allowed, denied, refused, mixed
  const char* reason;   // "" = don't check
  const char* policy;   // "" = none / don't check
  // How to check it for real: a pod IP:port directly, or a VIP:port through
  // socket-LB (the client runs in the test cgroup).
  std::string real_ip;
  uint16_t real_port;
  bool via_lb;
  bool v6 = false;
};

std::vector<Case> Cases() {
  return {
      {"allowed by (peer, port)", "client-0", "server-0:8080", "tcp", "allowed", "none", "demo/allow-client-8080",
       kServerIp, 8080, false},
      {"denied by a DENY (peer, port)", "client-0", "server-0:9090", "tcp", "denied", "policy_denied",
       "demo/deny-9090", kServerIp, 9090, false},
      {"default deny: no entry for the port", "client-0", "demo/server-0:8081", "tcp", "denied", "policy_default", "",
       kServerIp, 8081, false},
      {"unknown identity: no_identity", "stranger-0", "server-0:8080", "tcp", "denied", "no_identity", "", kServerIp,
       8080, false},
      {"unknown identity allowed by (ANY, port)", "stranger-0", "server-0:7070", "tcp", "allowed", "none",
       "demo/allow-any-7070", kServerIp, 7070, false},
      {"known identity falls through to (ANY, port)", "client-0", "server-0:7070", "tcp", "allowed", "none",
       "demo/allow-any-7070", kServerIp, 7070, false},
      {"pod IP literal", "demo/client-0", std::string(kServerIp) + ":8080", "tcp", "allowed", "none",
       "demo/allow-client-8080", kServerIp, 8080, false},
      {"pod without port: its only containerPort", "client-0", "server-0", "tcp", "allowed", "none",
       "demo/allow-client-8080", kServerIp, 8080, false},
      {"UDP allowed by (peer, ANY)", "client-0", "server-0:5300", "udp", "allowed", "none", "demo/allow-udp",
       kServerIp, 5300, false},
      {"UDP from an unknown identity", "stranger-0", "server-0:5300", "udp", "denied", "no_identity", "", kServerIp,
       5300, false},
      {"destination enforces nothing", "server-0", "client-0:8080", "tcp", "allowed", "none", "", kClientIp, 8080,
       false},
      {"service, one allowed backend", "client-0", "web", "tcp", "allowed", "none", "demo/allow-client-8080", kVipWeb,
       80, true},
      {"service, one denied backend", "client-0", "demo/denied:80", "tcp", "denied", "policy_denied",
       "demo/deny-9090", kVipDenied, 80, true},
      {"service from an unknown identity", "stranger-0", "web:80", "tcp", "denied", "no_identity", "", kVipWeb, 80,
       true},
      {"service without backends: refused", "client-0", "empty", "tcp", "refused", "no_backend", "", kVipEmpty, 80,
       true},
      {"random over an allowed and a denied backend", "client-0", "mixed", "tcp", "mixed", "", "", kVipMixed, 80, true},
      {"IPv6 allowed", "client-0", "server-0:8080", "tcp", "allowed", "none", "demo/allow-client-8080", kServerIp6,
       8080, false, true},
      {"IPv6 literal, denied", "client-0", std::string("[") + kServerIp6 + "]:9090", "tcp", "denied", "policy_denied",
       "demo/deny-9090", kServerIp6, 9090, false, true},
  };
}

class TraceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = ktest::MissingPrerequisite();
    if (why.empty() && !fs::exists(WEFT_WEFTCTL)) why = std::string("no weftctl at ") + WEFT_WEFTCTL;
    if (!why.empty()) {
      if (testing::InCi()) FAIL() << "CI=true and the trace cli tests cannot run: " << why;
      GTEST_SKIP() << "trace cli test skipped: " << why;
    }
    topo_ = std::make_unique<Topology>();
    std::string err = topo_->Build("tracecli");
    ASSERT_EQ(err, "") << "topology";
    server_ = std::make_unique<Acceptor>(Pod(1).ns->path(), kServerIp, std::vector<uint16_t>{8080, 8081, 9090, 7070});
    server6_ = std::make_unique<Acceptor>(Pod(1).ns->path(), kServerIp6, std::vector<uint16_t>{8080, 9090});
    ASSERT_EQ(server6_->listening(), 2u);
    client_ = std::make_unique<Acceptor>(Pod(0).ns->path(), kClientIp, std::vector<uint16_t>{8080});
    ASSERT_EQ(server_->listening(), 4u);
    ASSERT_EQ(client_->listening(), 1u);
    kernel_mode_ = ProgramHasTraceMode(bpf_program__fd(topo_->skel_->progs.weft_tc_to_pod));
  }
  void TearDown() override {
    server_.reset();
    server6_.reset();
    client_.reset();
    if (topo_) {
      topo_->Destroy();
      EXPECT_TRUE(topo_->Clean()) << "left behind: " << topo_->pin_root_ << " or " << topo_->lab_dir_;
    }
  }

  Topology::PodNs& Pod(int i) { return topo_->pods_[i]; }
  Topology::PodNs& PodNamed(const std::string& n) {
    for (auto& p : topo_->pods_)
      if (n == p.name || n == "demo/" + p.name) return p;
    return topo_->pods_[0];
  }

  CmdResult Trace(std::vector<std::string> args, bool lab = true) {
    args.insert(args.begin(), {WEFT_WEFTCTL, "trace"});
    if (lab)
      for (const auto& a : {"--lab", topo_->lab_.c_str(), "--state-dir", topo_->state_dir_.c_str()}) args.push_back(a);
    return RunCapture(args, topo_->tmp_);
  }
  Json TraceJson(const Case& c) {
    std::vector<std::string> args = {"--from", c.from, "--to", c.to, "--proto", c.proto, "-o", "json"};
    if (c.v6) args.push_back("-6");
    CmdResult r = Trace(args);
    EXPECT_EQ(r.code, 0) << c.name << ": " << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << c.name << ": " << r.out << r.err;
    return j.is_object() ? j : Json::object();
  }

  // What really happens: "ok" or "fail".
  std::string Real(const Case& c) {
    Topology::PodNs& from = PodNamed(c.from);
    if (std::string(c.proto) == "udp") {
      int rfd = SocketIn(Pod(1).ns->path(), SOCK_DGRAM);
      int sfd = SocketIn(from.ns->path(), SOCK_DGRAM);
      if (rfd < 0 || sfd < 0) return "setup";
      UniqueFd r(rfd), s(sfd);
      ktest::SockAddr a = ktest::MakeSockAddr(c.real_ip, c.real_port);
      if (bind(rfd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) return "bind";
      sendto(sfd, "x", 1, 0, reinterpret_cast<sockaddr*>(&a.ss), a.len);
      pollfd p{rfd, POLLIN, 0};
      return poll(&p, 1, 500) == 1 ? "ok" : "fail";
    }
    if (!c.via_lb) return ConnectFrom(from.ns->path(), c.real_ip, c.real_port) == 0 ? "ok" : "fail";
    auto out = ktest::RunInNetnsCgroup(from.ns->path(), topo_->cg_->path(), [&]() -> std::string {
      int fd = ktest::ConnectTcp(AF_INET, {c.real_ip, c.real_port}, 2000);
      if (fd < 0) return "fail";
      ktest::CloseRst(fd);
      return "ok";
    });
    return out.ok() ? *out : "child: " + out.status().message();
  }

  // Entries in weft_ct and total connections in weft_flows: a trace must not change them.
  std::pair<size_t, uint64_t> SideEffects() {
    size_t ct = 0;
    weft_ct_key k{}, next{};
    void* prev = nullptr;
    int fd = bpf_map__fd(topo_->skel_->maps.weft_ct);
    while (bpf_map_get_next_key(fd, prev, &next) == 0 && ct < 100000) ++ct, k = next, prev = &k;
    uint64_t conns = 0;
    auto aggs = flows::ReadAggregates(bpf_map__fd(topo_->skel_->maps.weft_flows),
                                      bpf_map__fd(topo_->skel_->maps.weft_flow_ctr));
    EXPECT_TRUE(aggs.ok()) << aggs.status().message();
    if (aggs.ok())
      for (const auto& a : *aggs) conns += a.total.connections + a.total.packets;
    return {ct, conns};
  }

  std::unique_ptr<Topology> topo_;
  std::unique_ptr<Acceptor> server_, server6_, client_;
  bool kernel_mode_ = false;
};

TEST_F(TraceCliTest, VerdictsAgreeWithRealConnections) {
  std::printf("tc_policy %s trace mode: weftctl trace answers from %s\n", kernel_mode_ ? "has" : "has no",
              kernel_mode_ ? "the kernel (BPF_PROG_TEST_RUN)" : "the maps walk");
  // All traces first: they must leave conntrack and the flow counts alone.
  auto before = SideEffects();
  std::vector<Json> traces;
  for (const Case& c : Cases()) traces.push_back(TraceJson(c));
  EXPECT_EQ(SideEffects(), before) << "tracing wrote conntrack or flow counts";

  const auto cases = Cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const Json& j = traces[i];
    SCOPED_TRACE(std::string(c.name) + ": " + j.dump(2));
    EXPECT_EQ(j["verdict"], c.verdict);
    if (*c.reason) {
      EXPECT_EQ(j["reason"], c.reason);
    }
    if (*c.policy) {
      EXPECT_EQ(j["policy"]["name"], c.policy);
    }
    if (std::string(c.verdict) == "allowed" || std::string(c.verdict) == "denied") {
      EXPECT_EQ(j["verdict_source"], kernel_mode_ ? "kernel" : "maps");
      for (const auto& p : j["paths"]) EXPECT_TRUE(p["disagreement"].is_null()) << p["disagreement"];
    }

    if (std::string(c.verdict) == "mixed") {
      std::printf("%s\n", j.dump(2).c_str());  // the JSON schema, in the test log
      std::set<std::string> seen;
      for (int n = 0; n < 24 && seen.size() < 2; ++n) seen.insert(Real(c));
      EXPECT_EQ(seen, (std::set<std::string>{"fail", "ok"})) << "random over an allowed and a denied backend";
      ASSERT_EQ(j["paths"].size(), 2u);
      std::set<std::string> per_backend;
      for (const auto& p : j["paths"]) per_backend.insert(p["verdict"].get<std::string>());
      EXPECT_EQ(per_backend, (std::set<std::string>{"allowed", "denied"}));
      EXPECT_EQ(j["socket_lb"]["pick"]["method"], "random");
      continue;
    }
    std::string want = std::string(c.verdict) == "allowed" ? "ok" : "fail";
    for (int n = 0; n < 3; ++n) EXPECT_EQ(Real(c), want) << "attempt " << n;
  }
  // The refused service was refused by socket-LB, not by a drop.
  auto st = topo_->lb_->SvcStats(3);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_GT(st->no_backend, 0u);
}

TEST_F(TraceCliTest, MaglevPickIsTheOneTheKernelMakes) {
  Case c{"maglev", "client-0", "maglev", "tcp", "", "", "", kVipMaglev, 80, true};
  Json j = TraceJson(c);
  ASSERT_EQ(j["socket_lb"]["algo"], "maglev") << j.dump(2);
  ASSERT_EQ(j["socket_lb"]["pick"]["exact"], true) << j.dump(2);
  ASSERT_EQ(j["paths"].size(), 1u) << j.dump(2);
  uint16_t port = j["paths"][0]["port"];
  // Which backend the kernel picks for this pod: the accepting port tells.
  auto out = ktest::RunInNetnsCgroup(Pod(0).ns->path(), topo_->cg_->path(), [&]() -> std::string {
    int fd = ktest::ConnectTcp(AF_INET, {kVipMaglev, 80}, 2000);
    if (fd < 0) return "fail";
    ktest::CloseRst(fd);
    return "ok";
  });
  ASSERT_TRUE(out.ok()) << out.status().message();
  const uint32_t want_be = port == 8080 ? 1 : 2;
  // getpeername shows the VIP again (reverse NAT): the backend counters tell.
  EXPECT_EQ(*topo_->lb_->BackendConnects(want_be), 1u) << "the kernel picked the traced backend";
  EXPECT_EQ(*topo_->lb_->BackendConnects(want_be == 1 ? 2 : 1), 0u);
  EXPECT_EQ(*out, j["verdict"] == "allowed" ? "ok" : "fail") << j.dump(2);
}

TEST_F(TraceCliTest, TextOutputWalksTheSteps) {
  CmdResult r = Trace({"--from", "client-0", "--to", "denied"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::printf("%s", r.out.c_str());  // what a user sees, in the test log
  for (const char* s : {"1. socket-LB", "2. identities", "3. policy", "4. TC programs", "hit: deny by demo/deny-9090",
                        "spiffe://cluster.local/ns/demo/sa/client", "verdict: denied (policy_denied, demo/deny-9090"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing from:\n" << r.out;
}

TEST_F(TraceCliTest, WithoutLabNamesJsonAndNetnsDetectionSuffice) {
  // No lab state: pods come from names.json, the node netns is found by the
  // endpoints' veths, a VIP literal is looked up in the live maps.
  CmdResult r = Trace({"--from", "demo/client-0", "--to", std::string(kVipDenied) + ":80", "-o", "json", "--pin-root",
                       topo_->pin_root_, "--state-dir", topo_->state_dir_},
                      /*lab=*/false);
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["verdict"], "denied") << j.dump(2);
  EXPECT_EQ(j["reason"], "policy_denied");
  EXPECT_EQ(j["socket_lb"]["service"], true);
  EXPECT_EQ(j["verdict_source"], kernel_mode_ ? "kernel" : "maps") << j.dump(2);
}

TEST_F(TraceCliTest, BadInputExitsOneWithCloseNamesAndMissingPinsExitTwo) {
  CmdResult r = Trace({"--from", "client-O", "--to", "web"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("demo/client-0"), std::string::npos) << r.err;
  r = Trace({"--from", "client-0", "--to", "wbe"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("demo/web"), std::string::npos) << r.err;
  r = Trace({"--from", "client-0", "--to", "server-0:99999"});
  EXPECT_EQ(r.code, 1) << r.err;
  r = Trace({"--from", "client-0", "--to", "10.96.7.1"});
  EXPECT_EQ(r.code, 0) << "a VIP literal without a port: its only port: " << r.err;
  r = RunCapture({WEFT_WEFTCTL, "trace", "--from", "client-0", "--to", "web", "--pin-root",
                  topo_->pin_root_ + "-nope"},
                 topo_->tmp_);
  EXPECT_EQ(r.code, 2) << r.err;
}

}  // namespace
}  // namespace weft::clitest
