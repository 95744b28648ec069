// Kernel tests of the agent's TC policy datapath (agent/policy/), label
// `kernel`, RUN_SERIAL. A node netns N with two veth pairs to pod netns P1
// (10.77.1.2) and P2 (10.77.2.2); the PolicyDatapath runs "in" N (the calling
// thread setns()es into it, as the agent runs in its node's netns), finds the
// host-side veths h1/h2 by route lookup, attaches, and is programmed from a
// weft.v1.NodeConfig. Real TCP/UDP between the pods.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "agent/policy/netlink.hpp"
#include "agent/policy/policy_datapath.hpp"
#include "tests/kernel/support/kernel_env.hpp"
#include "weft/sys.hpp"
#include "weft/tc_policy.skel.h"
#include "weft/unique_fd.hpp"

namespace weft::ktest {
namespace {

using policy::PolicyDatapath;
using Clock = std::chrono::steady_clock;


int SocketIn(const std::string& ns, int type) {
  InNetns in(ns);
  if (!in.ok()) return -errno;
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

// Connected TCP socket from netns `ns`, or -errno.
int Connect(const std::string& ns, const std::string& ip, uint16_t port, int timeout_ms = 2000) {
  int fd = SocketIn(ns, SOCK_STREAM);
  if (fd < 0) return fd;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  SockAddr a = MakeSockAddr(ip, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

uint64_t PercpuSum(int fd, uint32_t idx) {
  std::vector<uint64_t> v(libbpf_num_possible_cpus());
  if (bpf_map_lookup_elem(fd, &idx, v.data()) != 0) return ~0ull;
  uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

size_t CountEntries(int fd, size_t key_size) {
  std::vector<uint8_t> k(key_size), n(key_size);
  size_t c = 0;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, n.data()) == 0) {
    ++c;
    k = n;
    prev = k.data();
  }
  return c;
}

// Program id of an older agent's cls_bpf filter (our handle/priority) on one
// hook of an interface in netns `ns` (0: none).
uint32_t LegacyFilterProg(const std::string& ns, uint32_t ifindex, bpf_tc_attach_point point) {
  InNetns in(ns);
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = point;
  bpf_tc_opts q{};
  q.sz = sizeof(q);
  q.handle = policy::kTcHandle;
  q.priority = policy::kTcPriority;
  libbpf_print_fn_t prev = libbpf_set_print(nullptr);
  int err = bpf_tc_query(&hook, &q);
  libbpf_set_print(prev);
  return err == 0 ? q.prog_id : 0;
}

// Program id of the weft_tc_* program on one tcx hook (BPF_TC_INGRESS: tcx
// ingress) of an interface in netns `ns` (0: none; -1 as u32: more than one).
uint32_t AttachedProg(const std::string& ns, uint32_t ifindex, bpf_tc_attach_point point) {
  InNetns in(ns);
  __u32 ids[8] = {};
  struct bpf_prog_query_opts q{};
  q.sz = sizeof(q);
  q.prog_ids = ids;
  q.prog_cnt = 8;
  const int type = point == BPF_TC_INGRESS ? 46 : 47;  // BPF_TCX_INGRESS / BPF_TCX_EGRESS
  if (bpf_prog_query_opts(static_cast<int>(ifindex), static_cast<bpf_attach_type>(type), &q) != 0) return 0;
  uint32_t found = 0;
  for (__u32 i = 0; i < q.prog_cnt && i < 8; ++i) {
    UniqueFd fd(bpf_prog_get_fd_by_id(ids[i]));
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    if (std::strncmp(info.name, "weft_tc_", 8) != 0) continue;
    found = found ? ~0u : ids[i];
  }
  return found;
}

// The id of the BPF link pinned at `pin` (0: none).
uint32_t PinnedLinkId(const std::string& pin) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return 0;
  bpf_link_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 ? info.id : 0;
}

uint32_t ProgId(int fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.id;
}

uint32_t PinnedProgId(const std::string& pin) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  return fd ? ProgId(fd.get()) : 0;
}

// ---- config builders ------------------------------------------------------------
constexpr uint32_t kP1 = 2001, kP2 = 2002;
constexpr const char* kIp1 = "10.77.1.2";
constexpr const char* kIp2 = "10.77.2.2";

std::string V4(const char* ip) {
  in_addr a{};
  inet_pton(AF_INET, ip, &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

v1::PolicyEntry Entry(uint32_t peer, uint32_t port, v1::Protocol proto, v1::Verdict verdict, uint32_t policy_id) {
  v1::PolicyEntry e;
  e.set_peer_identity(peer);
  e.set_port(port);
  e.set_protocol(proto);
  e.set_direction(v1::INGRESS);
  e.set_verdict(verdict);
  e.set_policy_id(policy_id);
  return e;
}

v1::Workload Workload(const std::string& name, const char* ip, uint32_t identity, bool enforce,
                      const std::vector<v1::PolicyEntry>& entries) {
  v1::Workload w;
  w.set_namespace_("default");
  w.set_name(name);
  w.add_addresses(V4(ip));
  w.set_service_account(name);
  w.set_spiffe_id("spiffe://cluster.local/ns/default/sa/" + name);
  w.set_identity(identity);
  w.set_enforce_ingress(enforce);
  for (const auto& e : entries) *w.add_policy() = e;
  if (enforce) w.add_policies("default/p2-policy");
  return w;
}

// P2 admits from P1: TCP 8080 (policy 21), UDP 5300 (policy 22); denies TCP
// 9090 explicitly (policy 23); the rest is default-denied.
v1::NodeConfig BaseConfig() {
  v1::NodeConfig c;
  *c.add_local_workloads() = Workload("p1", kIp1, kP1, false, {});
  *c.add_local_workloads() =
      Workload("p2", kIp2, kP2, true,
               {Entry(kP1, 8080, v1::TCP, v1::ALLOW, 21), Entry(kP1, 5300, v1::UDP, v1::ALLOW, 22),
                Entry(kP1, 9090, v1::TCP, v1::DENY, 23)});
  for (auto [ip, id] : {std::pair{kIp1, kP1}, std::pair{kIp2, kP2}}) {
    auto* e = c.add_identity_cache();
    e->set_prefix(V4(ip));
    e->set_prefix_len(32);
    e->set_identity(id);
  }
  for (auto [id, name] : {std::pair{kP1, "p1"}, std::pair{kP2, "p2"}}) {
    auto* i = c.add_identities();
    i->set_id(id);
    i->set_spiffe_id(std::string("spiffe://cluster.local/ns/default/sa/") + name);
    i->set_namespace_("default");
    i->set_service_account(name);
  }
  for (auto [id, name, action] : {std::tuple{21u, "default/allow-8080", "ALLOW"},
                                  std::tuple{22u, "default/allow-dns", "ALLOW"},
                                  std::tuple{23u, "default/deny-9090", "DENY"}}) {
    auto* p = c.add_policy_names();
    p->set_id(id);
    p->set_name(name);
    p->set_action(action);
  }
  return c;
}

// ---- fixture ----------------------------------------------------------------------
class PolicyAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEFT_REQUIRE_KERNEL();
    auto t = MakeTwoPodNode();
    ASSERT_TRUE(t.ok()) << t.status().message();
    node_ = std::move(t->node), p1_ = std::move(t->p1), p2_ = std::move(t->p2);
    h1_ = t->h1, h2_ = t->h2;
    auto d = PinDir::Create();
    ASSERT_TRUE(d.ok()) << d.status().message();
    pins_ = std::move(*d);
    state_dir_ = "/tmp/" + UniqueName("weft-pstate-");
    StartListeners();
  }

  void TearDown() override {
    stop_ = true;
    for (auto& t : servers_) t.join();
    servers_.clear();
    listeners_.clear();
    dp_.reset();
    if (pins_) {
      InNetns in(node_ ? node_->path() : "/proc/self/ns/net");
      auto r = policy::CleanupPolicy(pins_->path(), "n1");
      EXPECT_TRUE(r.ok()) << r.status().message();
      std::error_code ec;
      std::filesystem::remove_all(pins_->path() + "/n1", ec);  // maps (datapath::Cleanup's job in the agent)
      EXPECT_TRUE(pins_->Remove().ok());
    }
    std::error_code ec;
    if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_, ec);
    for (auto* ns : {&p1_, &p2_, &node_})
      if (*ns) {
        EXPECT_TRUE((*ns)->Remove().ok());
      }
  }

  // TCP echo servers in P2 on 8080, 8081, 9090; a UDP counter on 5300.
  void StartListeners() {
    for (uint16_t port : {8080, 8081, 9090}) {
      int fd = SocketIn(p2_->path(), SOCK_STREAM);
      ASSERT_GE(fd, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      SockAddr a = MakeSockAddr(kIp2, port);
      ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len), 0) << strerror(errno);
      ASSERT_EQ(listen(fd, 1024), 0);
      listeners_.emplace_back(fd);
      servers_.emplace_back([this, fd] {
        std::vector<std::thread> conns;
        while (!stop_) {
          pollfd p{fd, POLLIN, 0};
          if (poll(&p, 1, 50) <= 0) continue;
          int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) continue;
          conns.emplace_back([this, c] {
            char buf[4096];
            while (!stop_) {
              pollfd p{c, POLLIN, 0};
              if (poll(&p, 1, 50) <= 0) continue;
              ssize_t n = recv(c, buf, sizeof(buf), 0);
              if (n <= 0) break;
              if (send(c, buf, n, MSG_NOSIGNAL) != n) break;
            }
            close(c);
          });
        }
        for (auto& t : conns) t.join();
      });
    }
    int u = SocketIn(p2_->path(), SOCK_DGRAM);
    ASSERT_GE(u, 0);
    SockAddr a = MakeSockAddr(kIp2, 5300);
    ASSERT_EQ(bind(u, reinterpret_cast<sockaddr*>(&a.ss), a.len), 0);
    listeners_.emplace_back(u);
    servers_.emplace_back([this, u] {
      char buf[64];
      while (!stop_) {
        pollfd p{u, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        while (recv(u, buf, sizeof(buf), MSG_DONTWAIT) > 0) ++udp_received_;
      }
    });
  }

  Result<std::unique_ptr<PolicyDatapath>> NewDatapath() {
    InNetns in(node_->path());
    policy::PolicyOptions o;
    o.pin_root = pins_->path();
    o.node = "n1";
    o.state_dir = state_dir_;
    o.capacities.ct = 1 << 14;
    o.capacities.identity = 1 << 10;
    o.capacities.policy = 1 << 10;
    o.capacities.flows = 1 << 12;
    o.lock_node = true;
    auto dp = PolicyDatapath::Load(o);
    if (!dp.ok()) return dp.status();
    WEFT_RETURN_IF_ERROR((*dp)->Attach());
    return dp;
  }
  // As the agent does: the push into the policy part of a node state, then
  // the datapath applies that state (reverted if it fails).
  Status Apply(const v1::NodeConfig& c, uint64_t version) {
    InNetns in(node_->path());
    auto change = state_.ApplySnapshot(c);
    if (!change.ok()) return change.status();
    return Applied(dp_->Apply(state_.desired(), *change, version));
  }
  // In the node's netns already.
  Status ApplyDelta(const v1::NodeConfigDelta& d, uint64_t version) {
    auto change = state_.ApplyDelta(d);
    if (!change.ok()) return change.status();
    return Applied(dp_->Apply(state_.desired(), *change, version));
  }
  Status Refresh() { return dp_->Refresh(state_.desired()); }
  Status Applied(const Status& st) {
    if (st.ok())
      state_.Commit();
    else
      state_.Revert();
    return st;
  }
  void Start() {
    auto dp = NewDatapath();
    ASSERT_TRUE(dp.ok()) << dp.status().message();
    dp_ = std::move(*dp);
    Status st = Apply(BaseConfig(), 1);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  uint64_t Drops(uint32_t reason) { return PercpuSum(bpf_map__fd(dp_->skel().maps.weft_drop_stats), reason); }

  std::unique_ptr<Netns> node_, p1_, p2_;
  std::unique_ptr<PinDir> pins_;
  std::string state_dir_;
  uint32_t h1_ = 0, h2_ = 0;
  std::unique_ptr<PolicyDatapath> dp_;
  policy::PolicyState state_;  // the policy part of the node state dp_ applies
  std::vector<UniqueFd> listeners_;
  std::vector<std::thread> servers_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> udp_received_{0};
};

// Connect outcome: 0 = connected and echoed, else the errno; and how long it took.
struct Outcome {
  int err;
  long ms;
};
Outcome TryConnect(const std::string& ns, uint16_t port) {
  auto t0 = Clock::now();
  int fd = Connect(ns, kIp2, port);
  int err = 0;
  if (fd < 0) {
    err = -fd;
  } else {
    char c = 'x', r = 0;
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || recv(fd, &r, 1, 0) != 1 || r != 'x') err = errno ? errno : EIO;
    CloseRst(fd);
  }
  return {err, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count())};
}

TEST_F(PolicyAgentTest, ProgrammedFromNodeConfigAllowsAndDenies) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Placement by route lookup: p1 -> h1, p2 -> h2, small stable endpoint ids.
  ASSERT_EQ(dp_->endpoints().size(), 2u);
  for (const auto& e : dp_->endpoints()) {
    EXPECT_EQ(e.ifindex, e.workload == "default/p1" ? h1_ : h2_) << e.workload;
    EXPECT_EQ(e.ifname, e.workload == "default/p1" ? "h1" : "h2");
    EXPECT_GE(e.ep_id, 1u);
    EXPECT_LE(e.ep_id, 2u);
  }
  // Attached on both hooks of P2's veth (a policy applies to it); the pinned
  // programs are the attached ones. P1 enforces nothing: only the program on
  // its way out (source validation), none on its way in.
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_EGRESS), PinnedProgId(dp_->prog_pin(false)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), 0u);
  EXPECT_NE(PinnedProgId(dp_->prog_pin(true)), 0u);

  struct Case {
    uint16_t port;
    int want;  // 0 or an accepted errno
    uint32_t reason;
  } cases[] = {
      {8080, 0, 0},
      {8081, ECONNREFUSED, WEFT_DROP_POLICY_DEFAULT},
      {9090, ECONNREFUSED, WEFT_DROP_POLICY_DENIED},
      {8080, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("port " + std::to_string(c.port));
    uint64_t before = c.reason ? Drops(c.reason) : 0;
    Outcome o = TryConnect(p1_->path(), c.port);
    if (c.want == 0) {
      EXPECT_EQ(o.err, 0) << strerror(o.err);
    } else {
      EXPECT_TRUE(o.err == ECONNREFUSED || o.err == ECONNRESET) << strerror(o.err);
      EXPECT_LT(o.ms, 1500) << "a denied connect must fail fast";
      EXPECT_EQ(Drops(c.reason), before + 1);
    }
  }

  // names.json: written atomically after the apply.
  std::ifstream in(state_dir_ + "/n1/names.json");
  ASSERT_TRUE(in.good());
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["identities"].size(), 2u);
  EXPECT_EQ(j["policies"].size(), 3u);
  ASSERT_EQ(j["endpoints"].size(), 2u);
  EXPECT_EQ(j["endpoints"][1]["workload"], "default/p2");
  EXPECT_EQ(j["endpoints"][1]["ifname"], "h2");
  EXPECT_EQ(j["endpoints"][1]["ifindex"], h2_);
  EXPECT_EQ(j["endpoints"][1]["enforce_ingress"], true);
  EXPECT_EQ(j["endpoints"][1]["addresses"][0], kIp2);

  // Metrics decode identities and policy names.
  auto pc = dp_->ReadPolicyCounters();
  ASSERT_TRUE(pc.ok()) << pc.status().message();
  bool saw_allowed = false, saw_denied = false;
  for (const auto& f : pc->flows) {
    if (f.dport == 8080 && f.verdict == "allowed" && f.policy == "default/allow-8080" &&
        f.src == "spiffe://cluster.local/ns/default/sa/p1" && f.dst == "spiffe://cluster.local/ns/default/sa/p2")
      saw_allowed = f.connections == 2;
    if (f.dport == 9090 && f.verdict == "denied" && f.reason == "policy_denied" && f.policy == "default/deny-9090")
      saw_denied = f.connections == 1;
  }
  EXPECT_TRUE(saw_allowed);
  EXPECT_TRUE(saw_denied);
}

TEST_F(PolicyAgentTest, PolicyChangeCutsEstablishedConnection) {
  ASSERT_NO_FATAL_FAILURE(Start());
  int fd = Connect(p1_->path(), kIp2, 8080);
  ASSERT_GE(fd, 0) << strerror(-fd);
  UniqueFd c(fd);
  char b = 'a';
  ASSERT_EQ(send(fd, &b, 1, MSG_NOSIGNAL), 1);
  ASSERT_EQ(recv(fd, &b, 1, 0), 1);
  uint32_t rev0 = dp_->policy_revision();

  // Same config, but 8080 now denied by policy 23.
  v1::NodeConfig deny = BaseConfig();
  auto* p2 = deny.mutable_local_workloads(1);
  p2->mutable_policy(0)->set_verdict(v1::DENY);
  p2->mutable_policy(0)->set_policy_id(23);
  ASSERT_TRUE(Apply(deny, 2).ok());
  EXPECT_EQ(dp_->policy_revision(), rev0 + 1);
  uint64_t denied0 = Drops(WEFT_DROP_POLICY_DENIED);

  auto t0 = Clock::now();
  int err = 0;
  for (int i = 0; i < 3 && err == 0; ++i) {
    if (send(fd, &b, 1, MSG_NOSIGNAL) != 1) {
      err = errno;
      break;
    }
    if (recv(fd, &b, 1, 0) != 1) err = errno ? errno : EPIPE;
  }
  long ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_EQ(err, ECONNRESET) << strerror(err);
  EXPECT_LT(ms, 1500) << "the cut must be fast, not a timeout";
  EXPECT_GE(Drops(WEFT_DROP_POLICY_DENIED), denied0 + 1);
  // New connections too.
  EXPECT_NE(TryConnect(p1_->path(), 8080).err, 0);

  // Allowed again: new connections pass.
  ASSERT_TRUE(Apply(BaseConfig(), 3).ok());
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0);
}

// Unchanged config: no map write, no revision bump (a re-sent snapshot never
// re-evaluates established flows).
TEST_F(PolicyAgentTest, SameConfigWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  uint32_t rev = dp_->policy_revision();
  ASSERT_TRUE(Apply(BaseConfig(), 2).ok());
  EXPECT_EQ(dp_->policy_revision(), rev);
}

// Every (key, value) of the live weft_identity LPM trie.
std::map<std::vector<uint8_t>, uint32_t> LiveIdentities(int fd) {
  std::map<std::vector<uint8_t>, uint32_t> out;
  weft_ipcache_key k{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    k = next;
    prev = &k;
    weft_ipcache_val v{};
    if (bpf_map_lookup_elem(fd, &k, &v) == 0) {
      const auto* b = reinterpret_cast<const uint8_t*>(&k);
      out[std::vector<uint8_t>(b, b + sizeof(k))] = v.identity;
    }
  }
  return out;
}

v1::IdentityCacheEntry CacheEntry(const std::string& prefix_bytes, uint32_t len, uint32_t identity) {
  v1::IdentityCacheEntry e;
  e.set_prefix(prefix_bytes);
  e.set_prefix_len(len);
  e.set_identity(identity);
  return e;
}

// A delta of identity-cache entries only takes ApplyDelta's fast path: the
// trie must end up exactly as a full apply of the same config would leave it,
// the revision moves once, a repeat writes nothing, a bad entry changes
// nothing, and traffic follows (p1's address gone: its connects are denied).
TEST_F(PolicyAgentTest, IdentityCacheDeltaEqualsAFullApply) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_EQ(TryConnect(p1_->path(), 8080).err, 0);
  const int fd = bpf_map__fd(dp_->skel().maps.weft_identity);
  const uint32_t rev0 = dp_->policy_revision();

  v1::NodeConfigDelta d;
  *d.add_upserted_identity_cache() = CacheEntry(V4("10.9.9.0"), 24, kP1);
  *d.add_upserted_identity_cache() = CacheEntry(V4("10.9.8.7"), 32, kP2);
  *d.add_removed_identity_cache() = CacheEntry(V4(kIp1), 32, 0);
  {
    InNetns in(node_->path());
    Status st = ApplyDelta(d, 2);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  EXPECT_EQ(dp_->policy_revision(), rev0 + 1);

  // The same config, applied in full by the reference path.
  v1::NodeConfig full = BaseConfig();
  full.clear_identity_cache();
  *full.add_identity_cache() = CacheEntry(V4(kIp2), 32, kP2);
  *full.add_identity_cache() = CacheEntry(V4("10.9.9.0"), 24, kP1);
  *full.add_identity_cache() = CacheEntry(V4("10.9.8.7"), 32, kP2);
  auto want = policy::PolicyState::Convert(full);
  ASSERT_TRUE(want.ok()) << want.status().message();
  std::map<std::vector<uint8_t>, uint32_t> expected;
  for (const auto& [k, v] : want->identity) {
    const auto* b = reinterpret_cast<const uint8_t*>(&k);
    expected[std::vector<uint8_t>(b, b + sizeof(k))] = v.identity;
  }
  EXPECT_EQ(LiveIdentities(fd), expected);

  // p1 has no identity now: default deny (no_identity) for its new connects.
  Outcome o = TryConnect(p1_->path(), 8080);
  EXPECT_NE(o.err, 0);
  EXPECT_LT(o.ms, 1500);

  // A repeat writes nothing; a bad entry fails before writing anything.
  {
    InNetns in(node_->path());
    ASSERT_TRUE(ApplyDelta(d, 3).ok());
    EXPECT_EQ(dp_->policy_revision(), rev0 + 1);
    v1::NodeConfigDelta bad;
    *bad.add_upserted_identity_cache() = CacheEntry(V4("10.9.7.1"), 32, kP1);
    *bad.add_upserted_identity_cache() = CacheEntry("\x0a\x09\x07", 24, kP1);  // 3 bytes
    Status st = ApplyDelta(bad, 4);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("3 bytes"), std::string::npos) << st.message();
  }
  EXPECT_EQ(LiveIdentities(fd), expected);

  // Back: the full path after the fast one starts from the right config.
  ASSERT_TRUE(Apply(BaseConfig(), 5).ok());
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0);
}

TEST_F(PolicyAgentTest, RestartReplacesProgramsWithoutLossAndKeepsState) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const uint32_t old_from = PinnedProgId(dp_->prog_pin(true));
  auto link_pin = [&](uint32_t ifx, bool ingress) {
    return pins_->path() + "/n1/tc_links/tcx_" + std::to_string(ifx) + (ingress ? "_ingress" : "_egress");
  };
  std::map<std::string, uint32_t> link_ids;
  for (uint32_t ifx : {h1_, h2_})
    for (bool in : {true, false}) {
      if (ifx == h1_ && !in) continue;  // P1 enforces nothing: its way in has no link
      link_ids[link_pin(ifx, in)] = PinnedLinkId(link_pin(ifx, in));
      EXPECT_NE(link_ids[link_pin(ifx, in)], 0u) << link_pin(ifx, in);
    }
  std::map<std::string, uint32_t> ids;
  for (const auto& e : dp_->endpoints()) ids[e.workload] = e.ep_id;

  // An ongoing TCP stream (echo) and UDP stream from P1 to P2.
  int tfd = Connect(p1_->path(), kIp2, 8080);
  ASSERT_GE(tfd, 0) << strerror(-tfd);
  UniqueFd tcp(tfd);
  int ufd = SocketIn(p1_->path(), SOCK_DGRAM);
  ASSERT_GE(ufd, 0);
  UniqueFd udp(ufd);
  SockAddr ua = MakeSockAddr(kIp2, 5300);
  ASSERT_EQ(connect(ufd, reinterpret_cast<sockaddr*>(&ua.ss), ua.len), 0);
  std::atomic<bool> done{false};
  std::atomic<int> tcp_errors{0};
  std::atomic<uint64_t> udp_sent{0}, tcp_rounds{0};
  std::thread traffic([&] {
    auto end = Clock::now() + std::chrono::seconds(10);  // bounded
    while (!done && Clock::now() < end) {
      char b = 'y';
      if (send(tfd, &b, 1, MSG_NOSIGNAL) != 1 || recv(tfd, &b, 1, 0) != 1) {
        ++tcp_errors;
        break;
      }
      ++tcp_rounds;
      if (send(ufd, "u", 1, 0) == 1) ++udp_sent;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // "kill -9": the object goes, pins and filters stay. A new instance adopts
  // them and replaces the programs in place.
  dp_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto dp = NewDatapath();
  ASSERT_TRUE(dp.ok()) << dp.status().message();
  dp_ = std::move(*dp);
  ASSERT_TRUE(Apply(BaseConfig(), 1).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  traffic.join();

  EXPECT_EQ(tcp_errors, 0);
  EXPECT_GT(tcp_rounds, 100u);
  auto deadline = Clock::now() + std::chrono::seconds(1);
  while (udp_received_ < udp_sent && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(udp_received_.load(), udp_sent.load()) << "datagrams lost across the restart";

  const uint32_t new_from = PinnedProgId(dp_->prog_pin(true));
  EXPECT_NE(new_from, old_from) << "the new agent's program is pinned";
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_INGRESS), new_from);
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_EGRESS), PinnedProgId(dp_->prog_pin(false)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), new_from);
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), 0u);
  for (const auto& [pin, id] : link_ids)
    EXPECT_EQ(PinnedLinkId(pin), id) << pin << ": the same link, its program swapped in place";
  for (const auto& e : dp_->endpoints()) EXPECT_EQ(e.ep_id, ids[e.workload]) << e.workload << ": ep id adopted";
  // Denied stays denied.
  Outcome o = TryConnect(p1_->path(), 9090);
  EXPECT_TRUE(o.err == ECONNREFUSED || o.err == ECONNRESET) << strerror(o.err);
}

TEST_F(PolicyAgentTest, DeltaRemovingWorkloadDetachesAndCleanupRemovesAll) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::NodeConfigDelta d;
  d.add_removed_workloads("default/p2");
  {
    InNetns in(node_->path());
    ASSERT_TRUE(ApplyDelta(d, 2).ok());
  }
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_INGRESS), 0u);
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_EGRESS), 0u);
  EXPECT_NE(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), 0u) << "P1: source validation only";
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), 0u) << "P1 enforces nothing";
  EXPECT_EQ(CountEntries(bpf_map__fd(dp_->skel().maps.weft_policy), sizeof(weft_policy_key)), 0u);
  EXPECT_EQ(CountEntries(bpf_map__fd(dp_->skel().maps.weft_endpoints), sizeof(uint32_t)), 1u);
  // No policy on P2 now: everything passes.
  EXPECT_EQ(TryConnect(p1_->path(), 8081).err, 0);
  {
    InNetns in(node_->path());
    auto n = policy::CountTcFilters(h2_, false);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0);
  }

  dp_.reset();
  {
    InNetns in(node_->path());
    auto r = policy::CleanupPolicy(pins_->path(), "n1");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_FALSE(r->removed.empty());
    auto n = policy::CountTcFilters(h1_, false);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0);
    auto again = policy::CleanupPolicy(pins_->path(), "n1");  // idempotent
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->removed.empty());
  }
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), 0u);
  EXPECT_FALSE(std::filesystem::exists(pins_->path() + "/n1/progs"));
  // tc shows no qdisc either.
  std::string out;
  auto rc = sys::RunCommand({"ip", "netns", "exec", node_->name(), "tc", "qdisc", "show", "dev", "h1"}, &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(out.find("clsact"), std::string::npos) << out;
}

// An older agent attached cls_bpf filters (clsact, our handle/priority): the
// new one attaches its tcx links, then removes those filters and the qdisc,
// with traffic allowed throughout and the policy in force after.
TEST_F(PolicyAgentTest, OlderAgentsClsBpfFiltersAreReplacedByTcxLinks) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const uint32_t from = PinnedProgId(dp_->prog_pin(true)), to = PinnedProgId(dp_->prog_pin(false));
  // Back to the old layout: no tcx links, cls_bpf filters instead.
  dp_.reset();
  {
    InNetns in(node_->path());
    for (uint32_t ifx : {h1_, h2_}) {
      for (bool ingress : {true, false}) {
        const std::string pin =
            pins_->path() + "/n1/tc_links/tcx_" + std::to_string(ifx) + (ingress ? "_ingress" : "_egress");
        if (UniqueFd l(bpf_obj_get(pin.c_str())); l) {  // P1's way out, P2's both ways
          ASSERT_EQ(bpf_link_detach(l.get()), 0);
          ASSERT_EQ(unlink(pin.c_str()), 0);
        }
        bpf_tc_hook hook{};
        hook.sz = sizeof(hook);
        hook.ifindex = static_cast<int>(ifx);
        hook.attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
        int err = bpf_tc_hook_create(&hook);
        ASSERT_TRUE(err == 0 || err == -EEXIST) << err;
        const std::string prog_pin =
            pins_->path() + (ingress ? "/n1/progs/weft_tc_from_pod" : "/n1/progs/weft_tc_to_pod");
        UniqueFd prog(bpf_obj_get(prog_pin.c_str()));
        ASSERT_TRUE(prog);
        bpf_tc_opts o{};
        o.sz = sizeof(o);
        o.prog_fd = prog.get();
        o.handle = policy::kTcHandle;
        o.priority = policy::kTcPriority;
        ASSERT_EQ(bpf_tc_attach(&hook, &o), 0);
      }
    }
  }
  for (uint32_t ifx : {h1_, h2_}) {
    ASSERT_EQ(LegacyFilterProg(node_->path(), ifx, BPF_TC_INGRESS), from);
    ASSERT_EQ(LegacyFilterProg(node_->path(), ifx, BPF_TC_EGRESS), to);
    ASSERT_EQ(AttachedProg(node_->path(), ifx, BPF_TC_INGRESS), 0u);
  }
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0) << "the old filters enforce: allowed";

  auto dp = NewDatapath();
  ASSERT_TRUE(dp.ok()) << dp.status().message();
  dp_ = std::move(*dp);
  ASSERT_TRUE(Apply(BaseConfig(), 1).ok());
  // P2: tcx links; P1 (enforces nothing): its way out only. Old filters gone from both.
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_EGRESS), PinnedProgId(dp_->prog_pin(false)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), 0u);
  for (uint32_t ifx : {h1_, h2_}) {
    EXPECT_EQ(LegacyFilterProg(node_->path(), ifx, BPF_TC_INGRESS), 0u) << ifx;
    EXPECT_EQ(LegacyFilterProg(node_->path(), ifx, BPF_TC_EGRESS), 0u) << ifx;
  }
  for (const char* dev : {"h1", "h2"}) {
    std::string out;
    ASSERT_TRUE(sys::RunCommand({"ip", "netns", "exec", node_->name(), "tc", "qdisc", "show", "dev", dev}, &out).ok());
    EXPECT_EQ(out.find("clsact"), std::string::npos) << dev << ": " << out;
  }
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0) << "allowed";
  Outcome o = TryConnect(p1_->path(), 9090);
  EXPECT_TRUE(o.err == ECONNREFUSED || o.err == ECONNRESET) << "denied: " << strerror(o.err);
}

// weft_tc_to_pod only where a policy applies: P1 gets it when it starts to
// enforce (egress here) and loses it when it stops; its way out keeps the
// same link throughout (source validation; the program swapped in place
// never changes), and its endpoint entry stays.
TEST_F(PolicyAgentTest, ProgramsFollowEnforcement) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string out_pin = pins_->path() + "/n1/tc_links/tcx_" + std::to_string(h1_) + "_ingress";
  const uint32_t out_link = PinnedLinkId(out_pin);
  ASSERT_NE(out_link, 0u);
  ASSERT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  ASSERT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), 0u);
  v1::NodeConfig c = BaseConfig();
  c.mutable_local_workloads(0)->set_enforce_egress(true);
  v1::PolicyEntry out = Entry(kP2, 8080, v1::TCP, v1::ALLOW, 31);
  out.set_direction(v1::EGRESS);
  *c.mutable_local_workloads(0)->add_policy() = out;
  ASSERT_TRUE(Apply(c, 2).ok());
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), PinnedProgId(dp_->prog_pin(false)));
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0) << "allowed on both sides";
  Outcome o = TryConnect(p1_->path(), 8081);  // P1's egress now denies it before P2 sees it
  EXPECT_TRUE(o.err == ECONNREFUSED || o.err == ECONNRESET) << strerror(o.err);

  ASSERT_TRUE(Apply(BaseConfig(), 3).ok());
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(AttachedProg(node_->path(), h1_, BPF_TC_EGRESS), 0u);
  EXPECT_EQ(PinnedLinkId(out_pin), out_link) << "the way out kept its link";
  EXPECT_FALSE(std::filesystem::exists(pins_->path() + "/n1/tc_links/tcx_" + std::to_string(h1_) + "_egress"));
  EXPECT_EQ(AttachedProg(node_->path(), h2_, BPF_TC_INGRESS), PinnedProgId(dp_->prog_pin(true)));
  EXPECT_EQ(CountEntries(bpf_map__fd(dp_->skel().maps.weft_endpoints), sizeof(uint32_t)), 2u);
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0);
}

// A workload whose veth does not exist yet is not placed (no filter, no
// endpoint); Refresh() places it once the interface appears.
TEST_F(PolicyAgentTest, WorkloadPlacedWhenItsInterfaceAppears) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::NodeConfig c = BaseConfig();
  *c.add_local_workloads() = Workload("p3", "10.77.3.2", 2003, true, {Entry(kP1, 80, v1::TCP, v1::ALLOW, 21)});
  ASSERT_TRUE(Apply(c, 2).ok());
  EXPECT_TRUE(dp_->has_unplaced());
  EXPECT_EQ(dp_->endpoints().size(), 2u);
  EXPECT_EQ(dp_->unplaced_count(), 1u);
  EXPECT_EQ(dp_->unplaced_addresses(), std::set<IpAddr>{*IpAddr::Parse("10.77.3.2")})
      << "its backend is withheld by the agent";
  {
    // The agent's loop refreshes every second while something is unplaced:
    // that must not log every second (it was reported once, at the apply).
    std::ostringstream logged;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged);
    auto prev = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
    for (int i = 0; i < 5; ++i) {
      InNetns in(node_->path());
      Status st = Refresh();
      EXPECT_TRUE(st.ok()) << st.message();
    }
    spdlog::set_default_logger(prev);
    EXPECT_EQ(logged.str(), "") << "refreshes of an unchanged placement logged";
  }
  std::unique_ptr<Netns> p3;
  {
    auto n = Netns::Create({});
    ASSERT_TRUE(n.ok()) << n.status().message();
    p3 = std::move(*n);
  }
  const std::string N = node_->name();
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "-n", N, "link", "add", "h3", "type", "veth", "peer", "name", "e3", "netns", p3->name()},
           {"ip", "-n", N, "addr", "add", "10.77.3.1/24", "dev", "h3"},
           {"ip", "-n", N, "link", "set", "h3", "up"}}) {
    Status st = sys::Run(argv);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  {
    InNetns in(node_->path());
    Status st = Refresh();
    ASSERT_TRUE(st.ok()) << st.message();
  }
  EXPECT_FALSE(dp_->has_unplaced());
  EXPECT_TRUE(dp_->unplaced_addresses().empty());
  ASSERT_EQ(dp_->endpoints().size(), 3u);
  uint32_t h3 = 0;
  for (const auto& e : dp_->endpoints())
    if (e.workload == "default/p3") h3 = e.ifindex;
  ASSERT_NE(h3, 0u);
  EXPECT_NE(AttachedProg(node_->path(), h3, BPF_TC_INGRESS), 0u);
  EXPECT_EQ(CountEntries(bpf_map__fd(dp_->skel().maps.weft_endpoints), sizeof(uint32_t)), 3u);
  EXPECT_TRUE(p3->Remove().ok());  // takes e3, and h3 with it
}

// The rtnetlink helper: the route to a workload's address gives its veth;
// local, unreachable and gateway routes are refused (never an uplink).
TEST_F(PolicyAgentTest, RouteLookupTable) {
  const std::string N = node_->name();
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "-n", N, "-6", "addr", "add", "fd77:2::1/64", "dev", "h2", "nodad"},
           {"ip", "-n", N, "route", "add", "10.99.0.0/16", "via", "10.77.1.2"},
           {"ip", "-n", N, "link", "add", "d0", "type", "bridge"},
           {"ip", "-n", N, "addr", "add", "10.88.0.1/24", "dev", "d0"},
           {"ip", "-n", N, "link", "set", "d0", "up"}}) {
    Status st = sys::Run(argv);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  struct Case {
    const char* addr;
    const char* ifname;  // nullptr: an error containing `error`
    const char* kind;
    const char* error;
  } cases[] = {
      {"10.77.1.2", "h1", "veth", nullptr},
      {"10.77.2.2", "h2", "veth", nullptr},
      {"fd77:2::2", "h2", "veth", nullptr},
      {"10.88.0.5", "d0", "bridge", nullptr},  // found; ApplyDesired refuses a non-veth
      {"10.77.1.1", nullptr, nullptr, "not a unicast route"},
      {"10.99.1.1", nullptr, nullptr, "gateway"},
      {"192.0.2.1", nullptr, nullptr, "route lookup of 192.0.2.1"},
  };
  InNetns in(node_->path());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.addr);
    auto r = policy::RouteToInterface(*IpAddr::Parse(c.addr));
    if (c.ifname) {
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_EQ(r->name, c.ifname);
      EXPECT_EQ(r->kind, c.kind);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status().message();
    }
  }
}

// ---- trace mode: BPF_PROG_TEST_RUN on the pinned programs -------------------------
std::vector<uint8_t> Packet(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport,
                            uint8_t flags) {
  std::vector<uint8_t> p(14 + 20 + (proto == IPPROTO_TCP ? 20 : 8), 0);
  p[0] = 0x02, p[5] = 2, p[6] = 0x02, p[11] = 1;
  p[12] = 0x08;
  uint8_t* ip = &p[14];
  ip[0] = 0x45;
  uint16_t tot = htons(p.size() - 14);
  std::memcpy(ip + 2, &tot, 2);
  ip[8] = 64, ip[9] = proto;
  inet_pton(AF_INET, src, ip + 12);
  inet_pton(AF_INET, dst, ip + 16);
  uint8_t* l4 = ip + 20;
  uint16_t s = htons(sport), d = htons(dport);
  std::memcpy(l4, &s, 2), std::memcpy(l4 + 2, &d, 2);
  if (proto == IPPROTO_TCP) {
    l4[12] = 5 << 4;
    l4[13] = flags;
  } else {
    uint16_t len = htons(8);
    std::memcpy(l4 + 4, &len, 2);
  }
  return p;
}

struct TraceOut {
  int ret = -1;
  uint32_t verdict = 0, reason = 0, stage = 0, policy = 0, peer = 0, ep = 0, magic = ~0u;
};

TraceOut Trace(const std::string& ns, const std::string& pin, uint32_t ifindex, const std::vector<uint8_t>& pkt) {
  InNetns in(ns);
  UniqueFd prog(bpf_obj_get(pin.c_str()));
  TraceOut t;
  if (!prog) return t;
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  ctx.mark = WEFT_TRACE_MARK;
  ctx.cb[WEFT_TRACE_CB_MAGIC] = WEFT_TRACE_MAGIC;
  __sk_buff out{};
  std::vector<uint8_t> data_out(pkt.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_out = data_out.data(),
              .data_size_in = static_cast<__u32>(pkt.size()), .data_size_out = static_cast<__u32>(data_out.size()),
              .ctx_in = &ctx, .ctx_out = &out, .ctx_size_in = sizeof(ctx), .ctx_size_out = sizeof(out),
              .repeat = 1);
  if (bpf_prog_test_run_opts(prog.get(), &opts) != 0) {
    t.ret = -1000 - errno;
    return t;
  }
  t.ret = static_cast<int>(opts.retval);
  uint32_t r = out.cb[WEFT_TRACE_CB_RESULT];
  t.verdict = r & 0xff, t.reason = (r >> 8) & 0xff, t.stage = (r >> 16) & 0xff;
  t.policy = out.cb[WEFT_TRACE_CB_POLICY], t.peer = out.cb[WEFT_TRACE_CB_PEER], t.ep = out.cb[WEFT_TRACE_CB_EP];
  t.magic = out.cb[WEFT_TRACE_CB_MAGIC];
  return t;
}

TEST_F(PolicyAgentTest, TraceModeDecidesWithoutSideEffects) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_EQ(TryConnect(p1_->path(), 8080).err, 0);  // one real flow in CT (and in the counters)
  tc_policy& s = dp_->skel();
  auto snapshot = [&] {
    return std::vector<uint64_t>{
        CountEntries(bpf_map__fd(s.maps.weft_ct), sizeof(weft_ct_key)),
        CountEntries(bpf_map__fd(s.maps.weft_flows), sizeof(weft_flow_key)),
        PercpuSum(bpf_map__fd(s.maps.weft_drop_stats), WEFT_DROP_POLICY_DEFAULT),
        PercpuSum(bpf_map__fd(s.maps.weft_drop_stats), WEFT_DROP_POLICY_DENIED),
        PercpuSum(bpf_map__fd(s.maps.weft_ev_stats), WEFT_EVSTAT_SENT),
        PercpuSum(bpf_map__fd(s.maps.weft_ev_stats), WEFT_EVSTAT_LOST),
    };
  };
  uint32_t ep2 = 0;
  for (const auto& e : dp_->endpoints())
    if (e.workload == "default/p2") ep2 = e.ep_id;
  const auto before = snapshot();
  const std::string to_pod = dp_->prog_pin(false), from_pod = dp_->prog_pin(true);
  constexpr uint8_t kSyn = 0x02, kAck = 0x10;
  struct Case {
    const char* name;
    std::string prog;
    uint32_t ifindex;
    std::vector<uint8_t> pkt;
    int ret;
    uint32_t verdict, reason, stage, policy, peer;
  } cases[] = {
      {"allowed SYN to p2:8080", to_pod, h2_, Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8080, kSyn), TC_ACT_OK,
       WEFT_VERDICT_ALLOW, 0, WEFT_TRACE_STAGE_POLICY, 21, kP1},
      {"default-denied SYN to p2:8081", to_pod, h2_, Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8081, kSyn), TC_ACT_SHOT,
       WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DEFAULT, WEFT_TRACE_STAGE_POLICY, 0, kP1},
      {"explicitly denied SYN to p2:9090", to_pod, h2_, Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 9090, kSyn),
       TC_ACT_SHOT, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DENIED, WEFT_TRACE_STAGE_POLICY, 23, kP1},
      {"unknown peer to p2:8080", to_pod, h2_, Packet("10.77.9.9", kIp2, IPPROTO_TCP, 41000, 8080, kSyn),
       TC_ACT_SHOT, WEFT_VERDICT_DENY, WEFT_DROP_NO_IDENTITY, WEFT_TRACE_STAGE_POLICY, 0, WEFT_IDENTITY_UNKNOWN},
      {"allowed UDP to p2:5300", to_pod, h2_, Packet(kIp1, kIp2, IPPROTO_UDP, 41000, 5300, 0), TC_ACT_OK,
       WEFT_VERDICT_ALLOW, 0, WEFT_TRACE_STAGE_POLICY, 22, kP1},
      {"denied ACK without conntrack (no RST in trace)", to_pod, h2_,
       Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8081, kAck), TC_ACT_SHOT, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DEFAULT,
       WEFT_TRACE_STAGE_POLICY, 0, kP1},
      {"p2's egress is not enforced", from_pod, h2_, Packet(kIp2, kIp1, IPPROTO_TCP, 41000, 80, kSyn), TC_ACT_OK,
       WEFT_VERDICT_ALLOW, 0, WEFT_TRACE_STAGE_UNENFORCED_DIR, 0, kP1},
      {"p1 enforces nothing", from_pod, h1_, Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8081, kSyn), TC_ACT_OK,
       WEFT_VERDICT_ALLOW, 0, WEFT_TRACE_STAGE_NOT_ENFORCED, 0, 0},
      {"not an endpoint (loopback)", to_pod, 1, Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8081, kSyn), TC_ACT_OK,
       WEFT_VERDICT_ALLOW, 0, WEFT_TRACE_STAGE_NO_ENDPOINT, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TraceOut t = Trace(node_->path(), c.prog, c.ifindex, c.pkt);
    EXPECT_EQ(t.ret, c.ret);
    EXPECT_EQ(t.magic, 0u) << "ran in trace mode";
    EXPECT_EQ(t.verdict, c.verdict);
    EXPECT_EQ(t.reason, c.reason);
    EXPECT_EQ(t.stage, c.stage);
    EXPECT_EQ(t.policy, c.policy);
    EXPECT_EQ(t.peer, c.peer);
    if (c.stage != WEFT_TRACE_STAGE_NO_ENDPOINT && c.stage != WEFT_TRACE_STAGE_NOT_ENFORCED) {
      EXPECT_EQ(t.ep, c.ifindex == h2_ ? ep2 : t.ep);
    }
  }
  EXPECT_EQ(snapshot(), before) << "trace mode touched conntrack, flows, drop or event counters";
  // The established flow is seen through conntrack, also without side effects.
}

// ---- source validation (issue 9 #7) ------------------------------------------------
// Ethernet + IPv6 + TCP/UDP/ICMPv6 header (no payload).
std::vector<uint8_t> Packet6(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport,
                             uint8_t flags) {
  const size_t l4 = proto == IPPROTO_TCP ? 20 : 8;
  std::vector<uint8_t> p(14 + 40 + l4, 0);
  p[0] = 0x33, p[1] = 0x33, p[6] = 0x02, p[11] = 1;
  p[12] = 0x86, p[13] = 0xdd;
  uint8_t* ip = &p[14];
  ip[0] = 0x60;
  uint16_t plen = htons(static_cast<uint16_t>(l4));
  std::memcpy(ip + 4, &plen, 2);
  ip[6] = proto, ip[7] = 255;
  inet_pton(AF_INET6, src, ip + 8);
  inet_pton(AF_INET6, dst, ip + 24);
  uint8_t* l = ip + 40;
  if (proto == IPPROTO_ICMPV6) {
    l[0] = 135;  // neighbour solicitation
    return p;
  }
  uint16_t s = htons(sport), d = htons(dport);
  std::memcpy(l, &s, 2), std::memcpy(l + 2, &d, 2);
  if (proto == IPPROTO_TCP) {
    l[12] = 5 << 4;
    l[13] = flags;
  } else {
    uint16_t len = htons(8);
    std::memcpy(l + 4, &len, 2);
  }
  return p;
}

std::vector<uint8_t> ArpRequest() {
  std::vector<uint8_t> p(14 + 28, 0);
  std::memset(p.data(), 0xff, 6);
  p[6] = 0x02, p[11] = 1;
  p[12] = 0x08, p[13] = 0x06;
  p[14 + 1] = 1, p[14 + 2] = 0x08, p[14 + 4] = 6, p[14 + 5] = 4, p[14 + 7] = 1;
  return p;
}

std::vector<uint8_t> Fragment(const char* src, const char* dst) {
  auto p = Packet(src, dst, IPPROTO_UDP, 41000, 5300, 0);
  uint16_t off = htons(100);  // a non-first fragment: no ports
  std::memcpy(&p[14 + 6], &off, 2);
  return p;
}

// P1 as two WorkloadEntries, one per family (as the lab registers a
// dual-stack pod): one endpoint on h1 with both addresses.
v1::NodeConfig DualStackConfig() {
  v1::NodeConfig c = BaseConfig();
  v1::Workload v6 = c.local_workloads(0);
  v6.set_name("p1-v6");
  v6.clear_addresses();
  in6_addr a{};
  inet_pton(AF_INET6, "fd77:1::2", &a);
  v6.add_addresses(std::string(reinterpret_cast<const char*>(&a), 16));
  *c.add_local_workloads() = v6;
  return c;
}

// Leaving a pod, only the pod's own addresses pass, whatever policy applies
// (P1 enforces nothing, P2 ingress only); the exemptions the kernel never
// forwards pass too; entering a pod nothing is checked. Trace mode: the
// decision without side effects; then one real run is counted.
TEST_F(PolicyAgentTest, SourceValidationTable) {
  ASSERT_TRUE(sys::Run({"ip", "-n", node_->name(), "-6", "addr", "add", "fd77:1::1/64", "dev", "h1", "nodad"}).ok());
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(Apply(DualStackConfig(), 2).ok());
  EXPECT_FALSE(dp_->has_unplaced()) << "p1-v6 merges into p1's endpoint";
  weft_endpoint ep1{};
  ASSERT_EQ(bpf_map_lookup_elem(bpf_map__fd(dp_->skel().maps.weft_endpoints), &h1_, &ep1), 0);
  ASSERT_EQ(ep1.n_addrs, 2);
  EXPECT_EQ(IpAddr::FromBytes(ep1.addrs[0]).ToString(), kIp1);
  EXPECT_EQ(IpAddr::FromBytes(ep1.addrs[1]).ToString(), "fd77:1::2");
  std::map<std::string, uint32_t> ifx;
  for (const auto& e : dp_->endpoints()) ifx[e.workload] = e.ifindex;
  EXPECT_EQ(ifx["default/p1"], h1_);
  EXPECT_EQ(ifx["default/p1-v6"], h1_);

  const std::string from_pod = dp_->prog_pin(true), to_pod = dp_->prog_pin(false);
  constexpr uint8_t kSyn = 0x02;
  const uint32_t kUnknown = WEFT_IDENTITY_UNKNOWN;
  struct Case {
    const char* name;
    std::string prog;
    uint32_t ifindex;
    std::vector<uint8_t> pkt;
    int ret;
    uint32_t reason, stage, peer;
  } cases[] = {
      {"p1's own IPv4 address", from_pod, h1_, Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8080, kSyn), TC_ACT_OK, 0,
       WEFT_TRACE_STAGE_NOT_ENFORCED, 0},
      {"p1's own IPv6 address (the second WorkloadEntry)", from_pod, h1_,
       Packet6("fd77:1::2", "fd77:2::2", IPPROTO_UDP, 41000, 5300, 0), TC_ACT_OK, 0, WEFT_TRACE_STAGE_NOT_ENFORCED, 0},
      {"another pod's address (p2's)", from_pod, h1_, Packet(kIp2, "10.77.3.3", IPPROTO_TCP, 41000, 80, kSyn),
       TC_ACT_SHOT, WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kUnknown},
      {"an address nobody has, to p2", from_pod, h1_, Packet("10.77.9.9", kIp2, IPPROTO_TCP, 41000, 8080, kSyn),
       TC_ACT_SHOT, WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kP2},
      {"forged UDP", from_pod, h1_, Packet("10.77.9.9", kIp2, IPPROTO_UDP, 41000, 5300, 0), TC_ACT_SHOT,
       WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kP2},
      {"forged ICMP (not TCP/UDP: checked all the same)", from_pod, h1_,
       Packet("10.77.9.9", kIp2, IPPROTO_ICMP, 0, 0, 0), TC_ACT_SHOT, WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kP2},
      {"forged non-first fragment", from_pod, h1_, Fragment("10.77.9.9", kIp2), TC_ACT_SHOT, WEFT_DROP_SOURCE,
       WEFT_TRACE_STAGE_SOURCE, kP2},
      {"forged IPv6", from_pod, h1_, Packet6("fd77:2::2", "fd77:9::9", IPPROTO_TCP, 41000, 80, kSyn), TC_ACT_SHOT,
       WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kUnknown},
      {"IPv6 link-local (neighbour discovery)", from_pod, h1_,
       Packet6("fe80::1", "ff02::1:ff00:1", IPPROTO_ICMPV6, 0, 0, 0), TC_ACT_OK, 0, WEFT_TRACE_STAGE_NOT_ENFORCED, 0},
      {"IPv6 unspecified (duplicate address detection)", from_pod, h1_,
       Packet6("::", "ff02::1:ff00:2", IPPROTO_ICMPV6, 0, 0, 0), TC_ACT_OK, 0, WEFT_TRACE_STAGE_NOT_ENFORCED, 0},
      {"IPv4 DHCP from 0.0.0.0", from_pod, h1_, Packet("0.0.0.0", "255.255.255.255", IPPROTO_UDP, 68, 67, 0),
       TC_ACT_OK, 0, WEFT_TRACE_STAGE_NOT_ENFORCED, 0},
      {"IPv4 0.0.0.0 but not DHCP", from_pod, h1_, Packet("0.0.0.0", kIp2, IPPROTO_TCP, 68, 67, kSyn), TC_ACT_SHOT,
       WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kP2},
      {"ARP (not IP)", from_pod, h1_, ArpRequest(), TC_ACT_OK, 0, WEFT_TRACE_STAGE_NOT_ENFORCED, 0},
      {"p2 (enforces ingress) from its own address", from_pod, h2_,
       Packet(kIp2, kIp1, IPPROTO_TCP, 41000, 80, kSyn), TC_ACT_OK, 0, WEFT_TRACE_STAGE_UNENFORCED_DIR, kP1},
      {"p2 forging p1's address", from_pod, h2_, Packet(kIp1, "10.77.3.3", IPPROTO_TCP, 41000, 80, kSyn),
       TC_ACT_SHOT, WEFT_DROP_SOURCE, WEFT_TRACE_STAGE_SOURCE, kUnknown},
      {"entering p2: no source check (policy decides)", to_pod, h2_,
       Packet(kIp1, kIp2, IPPROTO_TCP, 41000, 8080, kSyn), TC_ACT_OK, 0, WEFT_TRACE_STAGE_POLICY, kP1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TraceOut t = Trace(node_->path(), c.prog, c.ifindex, c.pkt);
    EXPECT_EQ(t.ret, c.ret);
    EXPECT_EQ(t.magic, 0u) << "ran in trace mode";
    EXPECT_EQ(t.verdict, c.ret == TC_ACT_OK ? WEFT_VERDICT_ALLOW : WEFT_VERDICT_DENY);
    EXPECT_EQ(t.reason, c.reason);
    EXPECT_EQ(t.stage, c.stage);
    if (c.stage == WEFT_TRACE_STAGE_SOURCE || c.stage == WEFT_TRACE_STAGE_POLICY) {
      EXPECT_EQ(t.peer, c.peer);
    }
  }

  // For real: dropped, not answered (a RST would go to the forged address),
  // counted under its own reason, as P1's (its identity sent it) towards P2.
  const uint64_t before = Drops(WEFT_DROP_SOURCE);
  {
    InNetns in(node_->path());
    UniqueFd prog(bpf_obj_get(from_pod.c_str()));
    ASSERT_TRUE(prog);
    auto pkt = Packet("10.77.9.9", kIp2, IPPROTO_TCP, 41000, 8080, kSyn);
    __sk_buff ctx{};
    ctx.ifindex = h1_;
    std::vector<uint8_t> out(pkt.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_out = out.data(),
                .data_size_in = static_cast<__u32>(pkt.size()), .data_size_out = static_cast<__u32>(out.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(prog.get(), &o), 0) << strerror(errno);
    EXPECT_EQ(o.retval, static_cast<__u32>(TC_ACT_SHOT)) << "dropped, not redirected as a RST";
  }
  EXPECT_EQ(Drops(WEFT_DROP_SOURCE), before + 1);
  auto pc = dp_->ReadPolicyCounters();
  ASSERT_TRUE(pc.ok()) << pc.status().message();
  bool flow = false;
  for (const auto& f : pc->flows)
    flow |= f.reason == "forged_source" && f.verdict == "denied" && f.direction == "egress" && f.dport == 8080 &&
            f.src == "spiffe://cluster.local/ns/default/sa/p1" && f.dst == "spiffe://cluster.local/ns/default/sa/p2" &&
            f.connections == 1;
  EXPECT_TRUE(flow) << "weft_flows_total has the forged flow as p1's";
  bool metric = false;
  for (const auto& [reason, n] : pc->drops) metric |= reason == "forged_source" && n == before + 1;
  EXPECT_TRUE(metric) << "weft_drops_total{reason=\"forged_source\"}";
}

// The attack of issue 9 #7 with real sockets: P1 (no policy applies to it)
// adds P3's address and sends from it to P2, which admits P3 (and not P1) on
// UDP 5300. The datagrams are dropped at P1's veth with their own reason;
// P1's real address still works, and so does P3's.
TEST_F(PolicyAgentTest, ForgedSourceIsDroppedWhateverPolicyApplies) {
  constexpr uint32_t kP3 = 2003;
  constexpr const char* kIp3 = "10.77.3.2";
  auto p3 = Netns::Create({});
  ASSERT_TRUE(p3.ok()) << p3.status().message();
  const std::string N = node_->name(), P1 = p1_->name(), P3 = (*p3)->name();
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "-n", N, "link", "add", "h3", "type", "veth", "peer", "name", "e3", "netns", P3},
           {"ip", "-n", N, "addr", "add", "10.77.3.1/24", "dev", "h3"},
           {"ip", "-n", N, "link", "set", "h3", "up"},
           {"ip", "-n", P3, "addr", "add", "10.77.3.2/24", "dev", "e3"},
           {"ip", "-n", P3, "link", "set", "e3", "up"},
           {"ip", "-n", P3, "route", "add", "10.77.2.0/24", "via", "10.77.3.1"}}) {
    Status st = sys::Run(argv);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  v1::NodeConfig c = BaseConfig();
  c.mutable_local_workloads(1)->mutable_policy(1)->set_peer_identity(kP3);  // UDP 5300: P3, not P1
  *c.add_local_workloads() = Workload("p3", kIp3, kP3, false, {});
  auto* e = c.add_identity_cache();
  e->set_prefix(V4(kIp3));
  e->set_prefix_len(32);
  e->set_identity(kP3);
  {
    auto dp = NewDatapath();
    ASSERT_TRUE(dp.ok()) << dp.status().message();
    dp_ = std::move(*dp);
    Status st = Apply(c, 1);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  ASSERT_FALSE(dp_->has_unplaced());

  auto send_from = [&](const std::string& ns, const char* src, int n) {
    int fd = SocketIn(ns, SOCK_DGRAM);
    if (fd < 0) return fd;
    UniqueFd u(fd);
    SockAddr from = MakeSockAddr(src, 0), to = MakeSockAddr(kIp2, 5300);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from.ss), from.len) != 0) return -errno;
    int sent = 0;
    for (int i = 0; i < n; ++i)
      sent += sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to.ss), to.len) == 1 ? 1 : 0;
    return sent;
  };
  auto wait_received = [&](uint64_t want) {
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (udp_received_ < want && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return udp_received_.load();
  };

  // P3 from its own address: admitted.
  ASSERT_EQ(send_from((*p3)->path(), kIp3, 5), 5);
  EXPECT_EQ(wait_received(5), 5u);
  // P1 from its own address: default-denied on 5300 (policy), allowed on 8080.
  const uint64_t default0 = Drops(WEFT_DROP_POLICY_DEFAULT);
  ASSERT_EQ(send_from(p1_->path(), kIp1, 1), 1);
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0);
  // P1 forging P3's address.
  ASSERT_TRUE(sys::Run({"ip", "-n", P1, "addr", "add", std::string(kIp3) + "/32", "dev", "e1"}).ok());
  const uint64_t source0 = Drops(WEFT_DROP_SOURCE);
  ASSERT_EQ(send_from(p1_->path(), kIp3, 10), 10);
  // The real address still works with the forged one on the interface.
  EXPECT_EQ(TryConnect(p1_->path(), 8080).err, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // what would arrive has arrived
  EXPECT_EQ(udp_received_.load(), 5u) << "a forged datagram reached P2 as P3";
  EXPECT_EQ(Drops(WEFT_DROP_SOURCE), source0 + 10);
  EXPECT_GE(Drops(WEFT_DROP_POLICY_DEFAULT), default0 + 1);
  auto pc = dp_->ReadPolicyCounters();
  ASSERT_TRUE(pc.ok());
  bool flow = false;
  for (const auto& f : pc->flows)
    flow |= f.reason == "forged_source" && f.src == "spiffe://cluster.local/ns/default/sa/p1" && f.dport == 5300 &&
            f.proto == "udp" && f.connections == 10;
  EXPECT_TRUE(flow) << "counted as P1's forged flow";
  EXPECT_TRUE((*p3)->Remove().ok());
}

}  // namespace
}  // namespace weft::ktest
