// Kernel tests of bpf/sock_lb.bpf.c: the real programs attached to a cgroup
// this test creates, maps written through the skeleton (no agent), clients
// forked into that cgroup and into a network namespace with only `lo`, where
// backends live on 10.250.0.1..3 / fd00:250::1..3 and VIPs (10.96.0.0/16,
// fd00:96::/64) are not routed: a missed rewrite fails with ENETUNREACH.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "tests/kernel/support/kernel_env.hpp"
#include "weft/sock_lb.skel.h"

namespace weft::ktest {
namespace {

namespace fs = std::filesystem;

// Backend ids 1..3 are IPv4, 4..6 IPv6; each listens on its own port so the
// port rewrite is checked too.
const Endpoint kBe4[3] = {{"10.250.0.1", 9001}, {"10.250.0.2", 9002}, {"10.250.0.3", 9003}};
const Endpoint kBe6[3] = {{"fd00:250::1", 9001}, {"fd00:250::2", 9002}, {"fd00:250::3", 9003}};
const std::vector<std::string> kNsAddrs = {"10.250.0.1/32",    "10.250.0.2/32",    "10.250.0.3/32",
                                           "fd00:250::1/128", "fd00:250::2/128", "fd00:250::3/128"};

std::vector<int> Split(const std::string& s) {
  std::istringstream in(s);
  std::vector<int> v;
  int x;
  while (in >> x) v.push_back(x);
  return v;
}

class SockLbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEFT_REQUIRE_KERNEL();
    auto ns = Netns::Create(kNsAddrs);
    ASSERT_TRUE(ns.ok()) << ns.status().message();
    ns_ = std::move(*ns);
    auto cg = Cgroup::Create();
    ASSERT_TRUE(cg.ok()) << cg.status().message();
    cg_ = std::move(*cg);
    auto pins = PinDir::Create();
    ASSERT_TRUE(pins.ok()) << pins.status().message();
    pins_ = std::move(*pins);
    auto lb = SockLb::Load(pins_->path());
    ASSERT_TRUE(lb.ok()) << lb.status().message();
    lb_ = std::move(*lb);
    ASSERT_TRUE(lb_->Attach(cg_->path()).ok());
    for (uint32_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(lb_->PutBackend(1 + i, kBe4[i]).ok());
      ASSERT_TRUE(lb_->PutBackend(4 + i, kBe6[i]).ok());
    }
  }

  void TearDown() override {
    std::vector<std::string> ns_paths, cg_paths, pin_paths;
    if (lb_) lb_->Destroy();
    lb_.reset();
    for (auto& n : extra_ns_) {
      ns_paths.push_back(n->path());
      EXPECT_TRUE(n->Remove().ok());
    }
    extra_ns_.clear();
    if (ns_) {
      ns_paths.push_back(ns_->path());
      EXPECT_TRUE(ns_->Remove().ok());
    }
    if (cg_) {
      cg_paths.push_back(cg_->path());
      auto st = cg_->Remove();
      EXPECT_TRUE(st.ok()) << st.message();
    }
    if (pins_) {
      pin_paths.push_back(pins_->path());
      auto st = pins_->Remove();
      EXPECT_TRUE(st.ok()) << st.message();
    }
    for (const auto& p : ns_paths) EXPECT_FALSE(fs::exists(p)) << "netns left: " << p;
    for (const auto& p : cg_paths) EXPECT_FALSE(fs::exists(p)) << "cgroup left: " << p;
    for (const auto& p : pin_paths) EXPECT_FALSE(fs::exists(p)) << "pins left: " << p;
  }

  Result<std::string> InPod(const std::function<std::string()>& fn, const Netns* ns = nullptr) {
    return RunInNetnsCgroup((ns ? ns : ns_.get())->path(), cg_->path(), fn);
  }

  // In the child: `n` TCP connects to vip, accepting each on the backend
  // listeners. Returns "<accepts on be0> <be1> <be2> <failed connects> <first errno>".
  static std::string ConnectMany(int family, const Endpoint& vip, const Endpoint* backends, int n,
                                 bool dual_stack = false) {
    std::vector<int> ls;
    for (int i = 0; i < 3; ++i) {
      int l = ListenTcp(backends[i]);
      if (l < 0) return "listen " + backends[i].ip + ": " + std::strerror(-l);
      ls.push_back(l);
    }
    int counts[3] = {0, 0, 0}, failed = 0, first_err = 0;
    for (int i = 0; i < n; ++i) {
      int fd = ConnectTcp(family, vip, 2000, dual_stack);
      if (fd < 0) {
        ++failed;
        if (!first_err) first_err = -fd;
        continue;
      }
      int idx = AcceptOne(ls, 2000);
      CloseRst(fd);
      if (idx < 0) {
        ++failed;
        if (!first_err) first_err = ETIMEDOUT;
        continue;
      }
      ++counts[idx];
    }
    for (int l : ls) close(l);
    return std::to_string(counts[0]) + " " + std::to_string(counts[1]) + " " + std::to_string(counts[2]) + " " +
           std::to_string(failed) + " " + std::to_string(first_err);
  }

  std::unique_ptr<Netns> ns_;
  std::vector<std::unique_ptr<Netns>> extra_ns_;
  std::unique_ptr<Cgroup> cg_;
  std::unique_ptr<PinDir> pins_;
  std::unique_ptr<SockLb> lb_;
};

// ---- weighted random ------------------------------------------------------------
struct WeightCase {
  const char* name;
  int family;
  Endpoint vip;
  const Endpoint* backends;
  uint32_t first_id;
  int connects;
};

void PrintTo(const WeightCase& c, std::ostream* os) { *os << c.name; }

class SockLbWeightTest : public SockLbTest, public ::testing::WithParamInterface<WeightCase> {};

TEST_P(SockLbWeightTest, WeightsOneOneTwoAndCountersMatchConnects) {
  const WeightCase& c = GetParam();
  const uint32_t svc = 7;
  uint32_t a = c.first_id, b = c.first_id + 1, d = c.first_id + 2;
  // Weights 1:1:2 as slots.
  ASSERT_TRUE(lb_->SetService(c.vip, IPPROTO_TCP, svc, WEFT_LB_RANDOM, 0, {a, b, d, d}).ok());

  auto out = InPod([&] { return ConnectMany(c.family, c.vip, c.backends, c.connects); });
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto v = Split(*out);
  ASSERT_EQ(v.size(), 5u) << *out;
  ASSERT_EQ(v[3], 0) << "failed connects; first errno " << v[4] << " (" << std::strerror(v[4]) << ")";
  int total = v[0] + v[1] + v[2];
  ASSERT_EQ(total, c.connects);
  const double want[3] = {25, 25, 50};
  for (int i = 0; i < 3; ++i) {
    double pct = 100.0 * v[i] / total;
    // Five binomial standard deviations (a fixed 3 points failed ~1% of runs
    // at 2,000 connects); a wrong weighting (1:1:1 gives 33/33/33) is still
    // 8 points or more off.
    const double p = want[i] / 100.0, tol = 5 * 100.0 * std::sqrt(p * (1 - p) / total);
    EXPECT_NEAR(pct, want[i], tol) << "backend " << c.backends[i].ip << " got " << v[i] << "/" << total;
  }

  // Counters: one per connect, per service and per backend.
  auto s = lb_->SvcStats(svc);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->connects, static_cast<uint64_t>(c.connects));
  EXPECT_EQ(s->no_backend, 0u);
  uint32_t ids[3] = {a, b, d};
  for (int i = 0; i < 3; ++i) {
    auto bc = lb_->BackendConnects(ids[i]);
    ASSERT_TRUE(bc.ok()) << bc.status().message();
    EXPECT_EQ(*bc, static_cast<uint64_t>(v[i])) << "backend id " << ids[i];
  }
  auto rw = lb_->LbStat(WEFT_STAT_CONNECT_REWRITTEN);
  ASSERT_TRUE(rw.ok());
  EXPECT_EQ(*rw, static_cast<uint64_t>(c.connects));
  EXPECT_EQ(*lb_->LbStat(WEFT_STAT_SLOT_MISS), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Random, SockLbWeightTest,
    ::testing::Values(WeightCase{"tcp4_10k", AF_INET, {"10.96.0.10", 80}, kBe4, 1, 10000},
                      WeightCase{"tcp6_2k", AF_INET6, {"fd00:96::a", 80}, kBe6, 4, 2000}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- Maglev -------------------------------------------------------------------------
// A trivial table (slot i -> backend i % 3) over a small prime: enough to
// check the program's side (client hash -> slot -> backend).
std::vector<uint32_t> TrivialMaglev(uint32_t first_id, size_t size = 251) {
  std::vector<uint32_t> t(size);
  for (size_t i = 0; i < size; ++i) t[i] = first_id + static_cast<uint32_t>(i % 3);
  return t;
}

TEST_F(SockLbTest, MaglevSameClientKeepsItsBackend) {
  const Endpoint vip{"10.96.0.20", 80};
  ASSERT_TRUE(lb_->SetService(vip, IPPROTO_TCP, 20, WEFT_LB_MAGLEV, 0, TrivialMaglev(1)).ok());
  for (int round = 0; round < 2; ++round) {  // two separate processes, same netns
    auto out = InPod([&] { return ConnectMany(AF_INET, vip, kBe4, 300); });
    ASSERT_TRUE(out.ok()) << out.status().message();
    auto v = Split(*out);
    ASSERT_EQ(v.size(), 5u);
    ASSERT_EQ(v[3], 0) << "first errno " << std::strerror(v[4]);
    int used = (v[0] > 0) + (v[1] > 0) + (v[2] > 0);
    EXPECT_EQ(used, 1) << "one client must stick to one backend: " << *out;
  }
  EXPECT_EQ(lb_->SvcStats(20)->connects, 600u);
}

TEST_F(SockLbTest, MaglevDifferentClientsSpread) {
  const Endpoint vip{"10.96.0.21", 80};
  ASSERT_TRUE(lb_->SetService(vip, IPPROTO_TCP, 21, WEFT_LB_MAGLEV, 0, TrivialMaglev(1)).ok());
  constexpr int kClients = 12;  // P(all 12 on one of 3 backends) = 3^-11
  std::set<int> chosen;
  for (int i = 0; i < kClients; ++i) {
    auto ns = Netns::Create(kNsAddrs);
    ASSERT_TRUE(ns.ok()) << ns.status().message();
    extra_ns_.push_back(std::move(*ns));
    auto out = InPod([&] { return ConnectMany(AF_INET, vip, kBe4, 20); }, extra_ns_.back().get());
    ASSERT_TRUE(out.ok()) << out.status().message();
    auto v = Split(*out);
    ASSERT_EQ(v.size(), 5u);
    ASSERT_EQ(v[3], 0) << "first errno " << std::strerror(v[4]);
    int used = 0;
    for (int b = 0; b < 3; ++b)
      if (v[b] > 0) {
        ++used;
        chosen.insert(b);
      }
    EXPECT_EQ(used, 1) << "client netns " << i << " moved between backends: " << *out;
  }
  EXPECT_GE(chosen.size(), 2u) << "12 client namespaces all hashed to one backend";
}

// ---- UDP ------------------------------------------------------------------------------
struct UdpCase {
  const char* name;
  int family;
  Endpoint vip;
  const Endpoint* backends;
  uint32_t first_id;
  bool connected;
};

void PrintTo(const UdpCase& c, std::ostream* os) { *os << c.name; }

class SockLbUdpTest : public SockLbTest, public ::testing::WithParamInterface<UdpCase> {};

// In the child: UDP echo servers on the backends; the client sends 5
// datagrams to the VIP (connect+send or sendto) and checks each reply's
// source as recvfrom reports it. Returns "ok" or what went wrong.
std::string UdpRoundTrips(const UdpCase& c) {
  std::vector<int> srv;
  for (int i = 0; i < 3; ++i) {
    int s = BindUdp(c.backends[i]);
    if (s < 0) return "bind " + c.backends[i].ip + ": " + std::strerror(-s);
    srv.push_back(s);
  }
  int cl = socket(c.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (cl < 0) return std::string("socket: ") + std::strerror(errno);
  SockAddr vip = MakeSockAddr(c.vip.ip, c.vip.port);
  std::string want = FormatSockAddr(vip.ss);
  if (c.connected) {
    if (connect(cl, reinterpret_cast<sockaddr*>(&vip.ss), vip.len) != 0)
      return std::string("connect VIP: ") + std::strerror(errno);
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    if (getpeername(cl, reinterpret_cast<sockaddr*>(&peer), &plen) != 0)
      return std::string("getpeername: ") + std::strerror(errno);
    if (FormatSockAddr(peer) != want) return "getpeername " + FormatSockAddr(peer) + ", want " + want;
  }
  for (int round = 0; round < 5; ++round) {
    std::string msg = "ping" + std::to_string(round);
    ssize_t n = c.connected ? send(cl, msg.data(), msg.size(), 0)
                            : sendto(cl, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&vip.ss), vip.len);
    if (n < 0) return std::string("send to VIP: ") + std::strerror(errno);
    std::vector<pollfd> p;
    for (int s : srv) p.push_back({s, POLLIN, 0});
    if (poll(p.data(), p.size(), 2000) <= 0) return "no backend received the datagram";
    for (size_t i = 0; i < p.size(); ++i) {
      if (!(p[i].revents & POLLIN)) continue;
      char buf[64];
      sockaddr_storage from{};
      socklen_t flen = sizeof(from);
      ssize_t r = recvfrom(srv[i], buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (r > 0) sendto(srv[i], buf, r, 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
    pollfd cp{cl, POLLIN, 0};
    if (poll(&cp, 1, 2000) <= 0) return "no reply";
    char buf[64];
    sockaddr_storage from{};
    socklen_t flen = sizeof(from);
    ssize_t r = recvfrom(cl, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (r < 0) return std::string("recvfrom: ") + std::strerror(errno);
    if (std::string(buf, r) != msg) return "reply payload " + std::string(buf, r);
    if (FormatSockAddr(from) != want) return "reply from " + FormatSockAddr(from) + ", want " + want;
  }
  return "ok";
}

TEST_P(SockLbUdpTest, ReplyComesFromTheVip) {
  const UdpCase& c = GetParam();
  const uint32_t svc = 30;
  ASSERT_TRUE(lb_->SetService(c.vip, IPPROTO_UDP, svc, WEFT_LB_RANDOM, 0,
                              {c.first_id, c.first_id + 1, c.first_id + 2})
                  .ok());
  auto out = InPod([&] { return UdpRoundTrips(c); });
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "ok");
  EXPECT_EQ(*lb_->LbStat(WEFT_STAT_RECVMSG_REVNAT), 5u);
  if (c.connected) {
    EXPECT_EQ(lb_->SvcStats(svc)->connects, 1u);
    EXPECT_EQ(*lb_->LbStat(WEFT_STAT_CONNECT_REWRITTEN), 1u);
  } else {
    EXPECT_EQ(lb_->SvcStats(svc)->connects, 5u);
    EXPECT_EQ(*lb_->LbStat(WEFT_STAT_SENDMSG_REWRITTEN), 5u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Udp, SockLbUdpTest,
    ::testing::Values(UdpCase{"v4_connected", AF_INET, {"10.96.0.30", 53}, kBe4, 1, true},
                      UdpCase{"v4_sendto", AF_INET, {"10.96.0.30", 53}, kBe4, 1, false},
                      UdpCase{"v6_connected", AF_INET6, {"fd00:96::30", 53}, kBe6, 4, true},
                      UdpCase{"v6_sendto", AF_INET6, {"fd00:96::30", 53}, kBe6, 4, false}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- getpeername (TCP) -----------------------------------------------------------------
struct PeerCase {
  const char* name;
  int family;
  bool dual_stack;
  Endpoint vip;
  const Endpoint* backends;
  uint32_t first_id;
};

void PrintTo(const PeerCase& c, std::ostream* os) { *os << c.name; }

class SockLbPeerTest : public SockLbTest, public ::testing::WithParamInterface<PeerCase> {};

TEST_P(SockLbPeerTest, GetpeernameShowsTheVip) {
  const PeerCase& c = GetParam();
  ASSERT_TRUE(lb_->SetService(c.vip, IPPROTO_TCP, 40, WEFT_LB_RANDOM, 0,
                              {c.first_id, c.first_id + 1, c.first_id + 2})
                  .ok());
  auto out = InPod([&]() -> std::string {
    std::vector<int> ls;
    for (int i = 0; i < 3; ++i) {
      int l = ListenTcp(c.backends[i]);
      if (l < 0) return "listen: " + std::string(std::strerror(-l));
      ls.push_back(l);
    }
    std::string res;
    for (int i = 0; i < 10; ++i) {
      int fd = ConnectTcp(c.family, c.vip, 2000, c.dual_stack);
      if (fd < 0) return "connect: " + std::string(std::strerror(-fd));
      sockaddr_storage peer{};
      socklen_t plen = sizeof(peer);
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) return "getpeername failed";
      int idx = AcceptOne(ls);
      CloseRst(fd);
      if (idx < 0) return "not accepted by any backend";
      std::string want = FormatSockAddr(MakeSockAddr(c.vip.ip, c.vip.port).ss);
      if (FormatSockAddr(peer) != want) return "getpeername " + FormatSockAddr(peer) + ", want " + want;
    }
    return "ok";
  });
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "ok");
  EXPECT_EQ(lb_->SvcStats(40)->connects, 10u);
}

INSTANTIATE_TEST_SUITE_P(
    Tcp, SockLbPeerTest,
    ::testing::Values(PeerCase{"v4", AF_INET, false, {"10.96.0.40", 80}, kBe4, 1},
                      PeerCase{"v6", AF_INET6, false, {"fd00:96::40", 80}, kBe6, 4},
                      // connect6 on a dual-stack socket to a service whose backends are
                      // IPv4: rewritten to ::ffff:10.250.0.x.
                      PeerCase{"v6_vip_v4_backends_dual_stack", AF_INET6, true, {"fd00:96::41", 80}, kBe4, 1}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- no backends -------------------------------------------------------------------------
struct RefuseCase {
  const char* name;
  int family;
  int type;
  bool use_sendto;
  Endpoint vip;
};

void PrintTo(const RefuseCase& c, std::ostream* os) { *os << c.name; }

class SockLbRefuseTest : public SockLbTest, public ::testing::WithParamInterface<RefuseCase> {};

TEST_P(SockLbRefuseTest, NoBackendsRefusesImmediately) {
  const RefuseCase& c = GetParam();
  const uint32_t svc = 50;
  const uint8_t proto = c.type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
  ASSERT_TRUE(lb_->SetService(c.vip, proto, svc, WEFT_LB_RANDOM, 0, {}).ok());
  constexpr int kTries = 3;
  auto out = InPod([&]() -> std::string {
    std::string errs;
    for (int i = 0; i < kTries; ++i) {
      int fd = socket(c.family, c.type | SOCK_CLOEXEC, 0);
      // A generous timeout: the assertion is "returned", not a speed.
      timeval tv{2, 0};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      SockAddr a = MakeSockAddr(c.vip.ip, c.vip.port);
      int rc = c.use_sendto ? static_cast<int>(sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&a.ss), a.len))
                            : connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len);
      errs += (rc == 0 ? std::string("0") : std::to_string(errno)) + " ";
      close(fd);
    }
    return errs;
  });
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (int e : Split(*out))
    EXPECT_EQ(e, ECONNREFUSED) << "got " << (e ? std::strerror(e) : "success") << " (" << e << ")";
  EXPECT_EQ(lb_->SvcStats(svc)->no_backend, static_cast<uint64_t>(kTries));
  EXPECT_EQ(lb_->SvcStats(svc)->connects, 0u);
  EXPECT_EQ(*lb_->LbStat(WEFT_STAT_NO_BACKEND), static_cast<uint64_t>(kTries));
}

INSTANTIATE_TEST_SUITE_P(
    Refuse, SockLbRefuseTest,
    ::testing::Values(RefuseCase{"tcp4_connect", AF_INET, SOCK_STREAM, false, {"10.96.0.50", 80}},
                      RefuseCase{"tcp6_connect", AF_INET6, SOCK_STREAM, false, {"fd00:96::50", 80}},
                      RefuseCase{"udp4_connect", AF_INET, SOCK_DGRAM, false, {"10.96.0.50", 53}},
                      RefuseCase{"udp4_sendto", AF_INET, SOCK_DGRAM, true, {"10.96.0.50", 53}},
                      RefuseCase{"udp6_sendto", AF_INET6, SOCK_DGRAM, true, {"fd00:96::50", 53}}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- backend removal -------------------------------------------------------------------------
TEST_F(SockLbTest, RemovedBackendGetsNoNewConnections) {
  const Endpoint vip{"10.96.0.60", 80};
  const uint32_t svc = 60;
  ASSERT_TRUE(lb_->SetService(vip, IPPROTO_TCP, svc, WEFT_LB_RANDOM, 0, {1, 2, 3}).ok());
  auto before = InPod([&] { return ConnectMany(AF_INET, vip, kBe4, 300); });
  ASSERT_TRUE(before.ok()) << before.status().message();
  auto vb = Split(*before);
  ASSERT_EQ(vb.size(), 5u);
  ASSERT_EQ(vb[3], 0);
  ASSERT_GT(vb[2], 0) << "backend 3 unused before removal: " << *before;

  // New generation without backend 3, flip, old slots deleted (SetService).
  ASSERT_TRUE(lb_->SetService(vip, IPPROTO_TCP, svc, WEFT_LB_RANDOM, 0, {1, 2}).ok());
  EXPECT_EQ(*lb_->CountSlots(svc), 2u) << "old generation's slots must be gone";
  EXPECT_EQ(lb_->GetService(vip, IPPROTO_TCP)->gen, 2);

  auto after = InPod([&] { return ConnectMany(AF_INET, vip, kBe4, 1000); });
  ASSERT_TRUE(after.ok()) << after.status().message();
  auto va = Split(*after);
  ASSERT_EQ(va.size(), 5u);
  EXPECT_EQ(va[3], 0) << "failed connects after removal, first errno " << std::strerror(va[4]);
  EXPECT_EQ(va[2], 0) << "removed backend still got connections: " << *after;
  EXPECT_EQ(va[0] + va[1], 1000);
  EXPECT_EQ(*lb_->LbStat(WEFT_STAT_SLOT_MISS), 0u);
}

// ---- racing/missing slots ------------------------------------------------------------------------
TEST_F(SockLbTest, MissingSlotsLeaveTheCallAloneAndCount) {
  // A service entry whose generation has no slots (what a reader sees if it
  // loses the race twice): the program gives up, counts, leaves the address.
  const Endpoint vip{"10.96.0.70", 80};
  weft_svc_key key = MakeSvcKey(vip, IPPROTO_TCP);
  weft_svc_val val{};
  val.svc_id = 70;
  val.gen = 9;
  val.slot_count = 4;
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(lb_->skel()->maps.weft_services), &key, &val, BPF_ANY), 0);
  auto out = InPod([&] {
    int fd = ConnectTcp(AF_INET, vip, 2000);
    if (fd >= 0) close(fd);
    return std::to_string(fd < 0 ? -fd : 0);
  });
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(std::stoi(*out), ENETUNREACH) << "VIP is unrouted in the test netns";
  EXPECT_EQ(*lb_->LbStat(WEFT_STAT_SLOT_MISS), 1u);
  EXPECT_EQ(lb_->SvcStats(70)->connects, 0u);
}

// ---- reserved STEER_PROXY flag -----------------------------------------------------------------
TEST_F(SockLbTest, SteerProxyFlagRoundTripsAndStillBalances) {
  const Endpoint vip{"10.96.0.80", 80};
  ASSERT_TRUE(
      lb_->SetService(vip, IPPROTO_TCP, 80, WEFT_LB_RANDOM, WEFT_SVC_F_STEER_PROXY, {1, 2, 3}).ok());

  // Through the map, as a typed struct.
  auto v = lb_->GetService(vip, IPPROTO_TCP);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->flags, WEFT_SVC_F_STEER_PROXY);
  EXPECT_EQ(v->algo, WEFT_LB_RANDOM);

  // Through the skeleton's BTF: find weft_svc_val.flags by name and read the
  // raw value bytes at that offset.
  const btf* b = bpf_object__btf(lb_->skel()->obj);
  ASSERT_NE(b, nullptr);
  int id = btf__find_by_name_kind(b, "weft_svc_val", BTF_KIND_STRUCT);
  ASSERT_GT(id, 0);
  const btf_type* t = btf__type_by_id(b, id);
  const btf_member* m = btf_members(t);
  int flags_off = -1, flags_size = 0;
  for (int i = 0; i < btf_vlen(t); ++i, ++m)
    if (std::string(btf__name_by_offset(b, m->name_off)) == "flags") {
      flags_off = static_cast<int>(btf_member_bit_offset(t, i) / 8);
      flags_size = static_cast<int>(btf__resolve_size(b, m->type));
    }
  ASSERT_GE(flags_off, 0) << "weft_svc_val.flags not in BTF";
  ASSERT_EQ(flags_size, 1);
  auto raw = lb_->GetServiceRaw(vip, IPPROTO_TCP);
  ASSERT_TRUE(raw.ok());
  ASSERT_LT(static_cast<size_t>(flags_off), raw->size());
  EXPECT_EQ((*raw)[flags_off], WEFT_SVC_F_STEER_PROXY);

  // Reserved: the flag does not skip normal balancing yet.
  auto out = InPod([&] { return ConnectMany(AF_INET, vip, kBe4, 30); });
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto c = Split(*out);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[3], 0) << "first errno " << std::strerror(c[4]);
  EXPECT_EQ(c[0] + c[1] + c[2], 30);
}

// ---- verifier -----------------------------------------------------------------------------------
// Loading in SetUp already proves the verifier accepts all 8 programs; this
// records how much it had to walk (ctest output / XML), with a loose ceiling
// that catches a path explosion long before the 1M-instruction limit.
TEST_F(SockLbTest, VerifierCostIsBounded) {
  bpf_program* p;
  bpf_object__for_each_program(p, lb_->skel()->obj) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len), 0) << bpf_program__name(p);
    RecordProperty(bpf_program__name(p), std::to_string(info.verified_insns));
    std::printf("%-20s verified_insns=%u xlated=%u bytes\n", bpf_program__name(p), info.verified_insns,
                info.xlated_prog_len);
    EXPECT_LT(info.verified_insns, 100000u) << bpf_program__name(p);
  }
}

// ---- non-services are untouched ---------------------------------------------------------------------
TEST_F(SockLbTest, DirectBackendConnectIsUntouched) {
  auto out = InPod([&]() -> std::string {
    int l = ListenTcp(kBe4[0]);
    if (l < 0) return "listen failed";
    int fd = ConnectTcp(AF_INET, kBe4[0]);
    if (fd < 0) return std::string("connect: ") + std::strerror(-fd);
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen);
    CloseRst(fd);
    close(l);
    return FormatSockAddr(peer);
  });
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "10.250.0.1:9001");
  EXPECT_EQ(*lb_->LbStat(WEFT_STAT_CONNECT_REWRITTEN), 0u);
}

}  // namespace
}  // namespace weft::ktest
