// The ABI version of a node's pins (issue 9 #11) and an upgrade across an ABI
// change without a window (issue 9 #12), label `kernel`.
//
// A two-pod node (kernel_env's MakeTwoPodNode): P1 10.77.1.2 (client, in a
// test cgroup, socket-LB to the VIP 10.96.0.10:8080) and P2 10.77.2.2 (an echo
// server on 8080, a listener on 9090), P2 enforcing ingress: P1 allowed on
// 8080, denied on 9090. The previous agent is the frozen ABI 1 objects
// (tests/kernel/abi_v1: the kernel side of the previous release), loaded,
// programmed and attached with the previous agent's pin layout; the new agent
// is the current Datapath + PolicyDatapath in the order weft-agent's Start()
// uses them.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/datapath/abi.hpp"
#include "agent/datapath/loader.hpp"
#include "agent/policy/policy_datapath.hpp"
#include "tests/kernel/support/kernel_env.hpp"
#include "weft/sock_lb_v1.skel.h"
#include "weft/sys.hpp"
#include "weft/tc_policy.skel.h"
#include "weft/tc_policy_v1.skel.h"
#include "weft/unique_fd.hpp"

namespace weft::ktest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;


constexpr uint32_t kP1 = 2001, kP2 = 2002;
constexpr const char* kIp1 = "10.77.1.2";
constexpr const char* kIp2 = "10.77.2.2";
constexpr const char* kVip = "10.96.0.10";
constexpr int kBpfTcxIngress = 46, kBpfTcxEgress = 47;

// weft_endpoint of ABI 1 (tests/kernel/abi_v1/include/weft/bpf_abi.h).
struct EndpointV1 {
  uint32_t ep_id, identity;
  uint8_t enforce_ingress, enforce_egress;
  uint16_t pad;
};
static_assert(sizeof(EndpointV1) == 12);

std::string V4(const char* ip) {
  in_addr a{};
  inet_pton(AF_INET, ip, &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

Status Put(int fd, const void* k, const void* v, const std::string& what) {
  if (bpf_map_update_elem(fd, k, v, BPF_ANY) != 0) return Status::Errno("write " + what, errno);
  return Status::Ok();
}

uint32_t IdOf(int fd) {
  bpf_link_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}
uint32_t PinnedId(const std::string& pin) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  return fd ? IdOf(fd.get()) : 0;
}
bpf_map_info PinnedMapInfo(const std::string& pin) {
  bpf_map_info info{};
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  __u32 len = sizeof(info);
  if (fd) bpf_obj_get_info_by_fd(fd.get(), &info, &len);
  return info;
}
uint32_t ProgIdOfPin(const std::string& pin) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  return fd && bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 ? info.id : 0;
}
// The one program on a tcx hook of `ifindex` in `ns` (0: none).
uint32_t TcxProg(const std::string& ns, uint32_t ifindex, bool ingress) {
  InNetns in(ns);
  __u32 ids[8] = {};
  struct bpf_prog_query_opts q {};
  q.sz = sizeof(q);
  q.prog_ids = ids;
  q.prog_cnt = 8;
  if (bpf_prog_query_opts(static_cast<int>(ifindex),
                          static_cast<bpf_attach_type>(ingress ? kBpfTcxIngress : kBpfTcxEgress), &q) != 0 ||
      q.prog_cnt != 1)
    return 0;
  return ids[0];
}
uint64_t PercpuSum(const std::string& pin, uint32_t idx) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  std::vector<uint64_t> v(libbpf_num_possible_cpus());
  if (!fd || bpf_map_lookup_elem(fd.get(), &idx, v.data()) != 0) return ~0ull;
  uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}
Result<uint32_t> PinnedAbiVersion(const std::string& maps_dir) {
  auto a = datapath::ReadPinnedAbi(maps_dir);
  if (!a.ok()) return a.status();
  return a->version;
}
Status StampMeta(const std::string& maps_dir, uint32_t version) {
  UniqueFd fd(bpf_obj_get((maps_dir + "/" WEFT_MAP_META).c_str()));
  if (!fd) return Status::Errno("open " WEFT_MAP_META, errno);
  weft_meta m{version, 0};
  uint32_t zero = 0;
  return Put(fd.get(), &zero, &m, WEFT_MAP_META);
}

// ---- the node config (what the controller sends) ----------------------------------------
v1::Workload Workload(const std::string& name, const char* ip, uint32_t identity, bool enforce) {
  v1::Workload w;
  w.set_namespace_("default");
  w.set_name(name);
  w.add_addresses(V4(ip));
  w.set_service_account(name);
  w.set_spiffe_id("spiffe://cluster.local/ns/default/sa/" + name);
  w.set_identity(identity);
  w.set_enforce_ingress(enforce);
  return w;
}
v1::NodeConfig Config() {
  v1::NodeConfig c;
  *c.add_local_workloads() = Workload("p1", kIp1, kP1, false);
  v1::Workload p2 = Workload("p2", kIp2, kP2, true);
  for (auto [port, verdict, id] : {std::tuple{8080u, v1::ALLOW, 21u}, std::tuple{9090u, v1::DENY, 23u}}) {
    auto* e = p2.add_policy();
    e->set_peer_identity(kP1);
    e->set_port(port);
    e->set_protocol(v1::TCP);
    e->set_direction(v1::INGRESS);
    e->set_verdict(verdict);
    e->set_policy_id(id);
  }
  *c.add_local_workloads() = p2;
  for (auto [ip, id] : {std::pair{kIp1, kP1}, std::pair{kIp2, kP2}}) {
    auto* e = c.add_identity_cache();
    e->set_prefix(V4(ip));
    e->set_prefix_len(32);
    e->set_identity(id);
  }
  return c;
}

class AbiTest : public ::testing::Test {
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
    auto cg = Cgroup::Create();
    ASSERT_TRUE(cg.ok()) << cg.status().message();
    cgroup_ = std::move(*cg);
  }

  void TearDown() override {
    stop_ = true;
    for (auto& t : servers_) t.join();
    servers_.clear();
    pdp_.reset();
    dp_.reset();
    if (pins_) {
      {
        InNetns in(node_ ? node_->path() : "/proc/self/ns/net");
        auto r = policy::CleanupPolicy(pins_->path(), "n1");
        EXPECT_TRUE(r.ok()) << r.status().message();
      }
      auto r = datapath::Cleanup(pins_->path(), "n1");  // sock_lb links, every map
      EXPECT_TRUE(r.ok()) << r.status().message();
      std::error_code ec;
      fs::remove_all(pins_->path() + "/n1", ec);
      EXPECT_TRUE(pins_->Remove().ok());
    }
    if (cgroup_) {
      EXPECT_TRUE(cgroup_->Remove().ok());
    }
    for (auto* ns : {&p1_, &p2_, &node_}) {
      if (*ns) {
        EXPECT_TRUE((*ns)->Remove().ok());
      }
    }
  }

  std::string NodeDir() const { return pins_->path() + "/n1"; }
  std::string MapsDir() const { return NodeDir() + "/maps"; }
  std::string TcxPin(uint32_t ifx, bool ingress) const {
    return NodeDir() + "/tc_links/tcx_" + std::to_string(ifx) + (ingress ? "_ingress" : "_egress");
  }

  // TCP echo on P2:8080 and a listener on 9090 (never reached: denied).
  void StartServers() {
    for (uint16_t port : {8080, 9090}) {
      int fd;
      {
        InNetns in(p2_->path());
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      }
      ASSERT_GE(fd, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      SockAddr a = MakeSockAddr(kIp2, port);
      ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len), 0) << strerror(errno);
      ASSERT_EQ(listen(fd, 4096), 0);
      servers_.emplace_back([this, fd] {
        // One thread per listener, every connection polled: many short
        // connections and one that lasts the whole test.
        UniqueFd l(fd);
        std::vector<pollfd> fds{{fd, POLLIN, 0}};
        while (!stop_) {
          if (poll(fds.data(), fds.size(), 50) <= 0) continue;
          for (size_t i = fds.size(); i-- > 1;) {
            if (!fds[i].revents) continue;
            char buf[256];
            ssize_t n = recv(fds[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0 && send(fds[i].fd, buf, n, MSG_NOSIGNAL) == n) continue;
            if (n < 0 && errno == EAGAIN) continue;
            close(fds[i].fd);
            fds.erase(fds.begin() + static_cast<long>(i));
          }
          if (fds[0].revents & POLLIN) {
            int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) fds.push_back({c, POLLIN, 0});
          }
        }
        for (size_t i = 1; i < fds.size(); ++i) close(fds[i].fd);
      });
    }
  }

  // The ABI 1 agent: both objects over R/n1/maps, the maps programmed, the
  // cgroup links pinned under links/, P2's tcx links under tc_links/ (P1
  // enforced nothing: no programs), the programs under progs/; then it goes
  // (kill -9): only the pins remain.
  void InstallAbi1Agent() {
    ASSERT_TRUE(
        sys::Run({"mkdir", "-p", MapsDir(), NodeDir() + "/links", NodeDir() + "/tc_links", NodeDir() + "/progs"}).ok());
    bpf_object_open_opts oo{};
    oo.sz = sizeof(oo);
    const std::string maps = MapsDir();
    oo.pin_root_path = maps.c_str();
    sock_lb_v1* lb = sock_lb_v1__open_opts(&oo);
    ASSERT_TRUE(lb) << strerror(errno);
    ASSERT_EQ(sock_lb_v1__load(lb), 0);
    {
      // VIP:8080/TCP -> P2:8080, one slot of generation 1.
      weft_backend be{};
      ASSERT_TRUE(ParseAbiAddr(kIp2, be.addr));
      be.port = htons(8080);
      uint32_t be_id = 1;
      ASSERT_TRUE(Put(bpf_map__fd(lb->maps.weft_backends), &be_id, &be, "backend").ok());
      weft_slot_key sk{1, 1, 0};
      ASSERT_TRUE(Put(bpf_map__fd(lb->maps.weft_slots), &sk, &be_id, "slot").ok());
      weft_svc_key k{};
      ASSERT_TRUE(ParseAbiAddr(kVip, k.addr));
      k.port = htons(8080);
      k.proto = IPPROTO_TCP;
      weft_svc_val v{};
      v.svc_id = 1, v.gen = 1, v.slot_count = 1, v.algo = WEFT_LB_RANDOM;
      ASSERT_TRUE(Put(bpf_map__fd(lb->maps.weft_services), &k, &v, "service").ok());
    }
    UniqueFd cg(open(cgroup_->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(cg);
    bpf_program* prog;
    bpf_object__for_each_program(prog, lb->obj) {
      bpf_link* link = bpf_program__attach_cgroup(prog, cg.get());
      ASSERT_TRUE(link) << bpf_program__name(prog);
      const std::string pin = NodeDir() + "/links/" + bpf_program__name(prog);
      ASSERT_EQ(bpf_link__pin(link, pin.c_str()), 0) << pin;
      cgroup_links_[pin] = IdOf(bpf_link__fd(link));
      bpf_link__destroy(link);
    }
    sock_lb_v1__destroy(lb);

    tc_policy_v1* tc = tc_policy_v1__open_opts(&oo);
    ASSERT_TRUE(tc) << strerror(errno);
    ASSERT_EQ(tc_policy_v1__load(tc), 0);
    const int ep = bpf_map__fd(tc->maps.weft_endpoints), pol = bpf_map__fd(tc->maps.weft_policy),
              id = bpf_map__fd(tc->maps.weft_identity);
    EndpointV1 e1{1, kP1, 0, 0, 0}, e2{2, kP2, 1, 0, 0};
    ASSERT_TRUE(Put(ep, &h1_, &e1, "endpoint h1").ok());
    ASSERT_TRUE(Put(ep, &h2_, &e2, "endpoint h2").ok());
    for (auto [port, verdict, pid] : {std::tuple{uint16_t{8080}, uint8_t{WEFT_VERDICT_ALLOW}, 21u},
                                      std::tuple{uint16_t{9090}, uint8_t{WEFT_VERDICT_DENY}, 23u}}) {
      weft_policy_key k{2, kP1, port, IPPROTO_TCP, WEFT_DIR_INGRESS};
      weft_policy_val v{verdict, 0, 0, pid};
      ASSERT_TRUE(Put(pol, &k, &v, "policy").ok());
    }
    for (auto [ip, ident] : {std::pair{kIp1, kP1}, std::pair{kIp2, kP2}}) {
      weft_ipcache_key k{128, {}};
      ASSERT_TRUE(ParseAbiAddr(ip, k.addr));
      weft_ipcache_val v{ident, 0};
      ASSERT_TRUE(Put(id, &k, &v, "identity").ok());
    }
    uint32_t zero = 0, rev = 1;
    ASSERT_TRUE(Put(bpf_map__fd(tc->maps.weft_policy_rev), &zero, &rev, "revision").ok());
    {
      InNetns in(node_->path());
      for (bool ingress : {true, false}) {
        bpf_program* p = ingress ? tc->progs.weft_tc_from_pod : tc->progs.weft_tc_to_pod;
        int fd = bpf_link_create(bpf_program__fd(p), static_cast<int>(h2_),
                                 static_cast<bpf_attach_type>(ingress ? kBpfTcxIngress : kBpfTcxEgress), nullptr);
        ASSERT_GE(fd, 0) << strerror(-fd);
        UniqueFd link(fd);
        ASSERT_EQ(bpf_obj_pin(fd, TcxPin(h2_, ingress).c_str()), 0);
        tcx_links_[TcxPin(h2_, ingress)] = IdOf(fd);
        const std::string pp = NodeDir() + (ingress ? "/progs/weft_tc_from_pod" : "/progs/weft_tc_to_pod");
        ASSERT_EQ(bpf_obj_pin(bpf_program__fd(p), pp.c_str()), 0);
      }
    }
    old_from_ = ProgIdOfPin(NodeDir() + "/progs/weft_tc_from_pod");
    tc_policy_v1__destroy(tc);
  }

  // The current agent, in weft-agent's Start() order: sock_lb loaded, the
  // policy datapath loaded, sock_lb attached, the policy attached (its last
  // step stamps the node), then the controller's config applied.
  Status StartNewAgent() {
    datapath::LoaderOptions lo;
    lo.pin_root = pins_->path();
    lo.node = "n1";
    lo.cgroup = cgroup_->path();
    auto dp = datapath::Datapath::Load(lo);
    if (!dp.ok()) return dp.status();
    dp_ = std::move(*dp);
    InNetns in(node_->path());
    policy::PolicyOptions po;
    po.pin_root = pins_->path();
    po.node = "n1";
    auto pdp = policy::PolicyDatapath::Load(po);
    if (!pdp.ok()) return pdp.status();
    pdp_ = std::move(*pdp);
    WEFT_RETURN_IF_ERROR(dp_->Attach());
    WEFT_RETURN_IF_ERROR(pdp_->Attach());
    return pdp_->Apply(Config(), 1);
  }

  std::unique_ptr<Netns> node_, p1_, p2_;
  std::unique_ptr<PinDir> pins_;
  std::unique_ptr<Cgroup> cgroup_;
  uint32_t h1_ = 0, h2_ = 0, old_from_ = 0;
  std::map<std::string, uint32_t> cgroup_links_, tcx_links_;
  std::unique_ptr<datapath::Datapath> dp_;
  std::unique_ptr<policy::PolicyDatapath> pdp_;
  std::vector<std::thread> servers_;
  std::atomic<bool> stop_{false};
};

// Shared with the traffic child (fork): counters and the stop flag.
struct Traffic {
  std::atomic<uint64_t> ok{0}, failed{0}, denied_ok{0}, denied_passed{0}, long_rounds{0}, long_failed{0};
  std::atomic<int> last_err{0};
  std::atomic<uint64_t> first_failure_at{0};  // the ok count then
  std::atomic<int> failed_step{0};            // 1 connect, 2 send/recv
  std::atomic<bool> stop{false};
};

// In P1 (its netns and cgroup): short connections to the VIP (socket-LB to
// P2:8080, P2's policy allows them), one long connection echoing throughout,
// and now and then a connect to P2:9090, which the policy must refuse.
std::string RunTraffic(Traffic* t) {
  auto connect_to = [](const char* ip, uint16_t port) { return ConnectTcp(AF_INET, Endpoint{ip, port}, 3000); };
  int lfd = connect_to(kVip, 8080);
  if (lfd < 0) return "long connection: " + std::string(strerror(-lfd));
  auto end = Clock::now() + std::chrono::seconds(60);  // bounded
  for (uint64_t i = 0; !t->stop && Clock::now() < end; ++i) {
    char b = 'x';
    if (send(lfd, &b, 1, MSG_NOSIGNAL) == 1 && recv(lfd, &b, 1, 0) == 1)
      ++t->long_rounds;
    else
      ++t->long_failed;
    int fd = connect_to(kVip, 8080);
    bool good = false;
    if (fd >= 0) {
      char c = 'y';
      good = send(fd, &c, 1, MSG_NOSIGNAL) == 1 && recv(fd, &c, 1, 0) == 1 && c == 'y';
      if (!good) t->last_err = errno, t->failed_step = 2;
      CloseRst(fd);
    } else {
      t->last_err = -fd, t->failed_step = 1;
    }
    if (!good && t->failed == 0) t->first_failure_at = t->ok.load();
    ++(good ? t->ok : t->failed);
    if (i % 10 == 0) {
      int d = connect_to(kIp2, 9090);
      if (d >= 0) {
        ++t->denied_passed;
        CloseRst(d);
      } else {
        ++t->denied_ok;
      }
    }
  }
  close(lfd);
  return "done";
}

bool WaitUntil(const std::function<bool()>& cond, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// An agent of ABI 1 replaced under traffic: the new layout is created and
// filled from the old maps, the links swapped in place, the old pins removed
// last, the node stamped; not one connection fails, the denied port stays
// denied throughout, and the new source check is in force afterwards.
TEST_F(AbiTest, UpgradeFromAbi1UnderTrafficLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_NO_FATAL_FAILURE(InstallAbi1Agent());
  ASSERT_EQ(*PinnedAbiVersion(MapsDir()), 1u) << "pins without weft_meta read as ABI 1";
  ASSERT_EQ(PinnedMapInfo(MapsDir() + "/" WEFT_MAP_ENDPOINTS).value_size, sizeof(EndpointV1));

  void* mem = mmap(nullptr, sizeof(Traffic), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* t = new (mem) Traffic();
  struct Unmap {
    void* p;
    ~Unmap() { munmap(p, sizeof(Traffic)); }
  } unmap{mem};
  Result<std::string> child_out = Status::Error("not run");
  std::thread child([&] {
    child_out = RunInNetnsCgroup(
        p1_->path(), cgroup_->path(), [t] { return RunTraffic(t); }, 90000);
  });
  struct StopChild {
    Traffic* t;
    std::thread* th;
    ~StopChild() {
      t->stop = true;
      if (th->joinable()) th->join();
    }
  } stop_child{t, &child};

  ASSERT_TRUE(WaitUntil([&] { return t->ok >= 100 || t->failed > 0; }, std::chrono::seconds(30)))
      << "the ABI 1 datapath carries no traffic";
  ASSERT_EQ(t->failed.load(), 0u) << "before the upgrade: " << strerror(t->last_err);
  const uint64_t ok_before = t->ok,
                 denied_before = PercpuSum(MapsDir() + "/" WEFT_MAP_DROP_STATS, WEFT_DROP_POLICY_DENIED);
  ASSERT_GT(denied_before, 0u) << "the 9090 probes are dropped by the ABI 1 programs";

  Status st = StartNewAgent();
  ASSERT_TRUE(st.ok()) << st.message();
  const uint64_t ok_at_swap = t->ok;
  ASSERT_TRUE(WaitUntil([&] { return t->ok >= ok_at_swap + 100 || t->failed > 0; }, std::chrono::seconds(30)));
  t->stop = true;
  child.join();
  ASSERT_TRUE(child_out.ok()) << child_out.status().message();
  EXPECT_EQ(*child_out, "done");

  EXPECT_EQ(t->failed.load(), 0u) << "connections failed across the upgrade: " << strerror(t->last_err) << " at step "
                                  << t->failed_step << ", the first after " << t->first_failure_at
                                  << " good ones (the swap came after " << ok_at_swap << ")";
  if (t->failed)
    for (uint32_t r = 1; r < WEFT_DROP_MAX; ++r)
      std::cerr << "drops reason " << r << ": " << PercpuSum(MapsDir() + "/" WEFT_MAP_DROP_STATS, r) << "\n";
  EXPECT_EQ(t->long_failed.load(), 0u) << "the long connection broke";
  EXPECT_EQ(t->denied_passed.load(), 0u) << "the denied port was reachable at some point";
  EXPECT_GT(t->denied_ok.load(), 0u);
  EXPECT_GE(ok_before, 100u);

  // The node is of this ABI now: stamped, the migrated maps in the new
  // layout at their usual pins, no staging pin left, the counters carried.
  EXPECT_EQ(*PinnedAbiVersion(MapsDir()), static_cast<uint32_t>(WEFT_ABI_VERSION));
  bpf_map_info ep = PinnedMapInfo(MapsDir() + "/" WEFT_MAP_ENDPOINTS);
  EXPECT_EQ(ep.value_size, sizeof(weft_endpoint));
  EXPECT_EQ(ep.map_flags, static_cast<__u32>(BPF_F_NO_PREALLOC));
  EXPECT_EQ(PinnedMapInfo(MapsDir() + "/" WEFT_MAP_DROP_STATS).max_entries, static_cast<__u32>(WEFT_DROP_MAX));
  EXPECT_GE(PercpuSum(MapsDir() + "/" WEFT_MAP_DROP_STATS, WEFT_DROP_POLICY_DENIED), denied_before);
  for (const auto& e : fs::directory_iterator(MapsDir()))
    EXPECT_EQ(e.path().filename().string().find("_abi"), std::string::npos) << "staging pin left: " << e.path();
  // The same links, their programs swapped in place.
  for (const auto& [pin, id] : cgroup_links_) EXPECT_EQ(PinnedId(pin), id) << pin;
  for (const auto& [pin, id] : tcx_links_) EXPECT_EQ(PinnedId(pin), id) << pin;
  const uint32_t new_from = ProgIdOfPin(NodeDir() + "/progs/weft_tc_from_pod");
  EXPECT_NE(new_from, old_from_);
  EXPECT_EQ(TcxProg(node_->path(), h2_, true), new_from);
  // The ABI 2 datapath: P1 (no policy) gets its source check, with its address.
  EXPECT_EQ(TcxProg(node_->path(), h1_, true), new_from);
  weft_endpoint e1{};
  UniqueFd eps(bpf_obj_get((MapsDir() + "/" WEFT_MAP_ENDPOINTS).c_str()));
  ASSERT_TRUE(eps);
  ASSERT_EQ(bpf_map_lookup_elem(eps.get(), &h1_, &e1), 0);
  EXPECT_EQ(e1.ep_id, 1u) << "the endpoint id survived the migration";
  ASSERT_EQ(e1.n_addrs, 1);
  EXPECT_EQ(IpAddr::FromBytes(e1.addrs[0]).ToString(), kIp1);

  // A restart of the new agent adopts its own pins (no migration).
  pdp_.reset();
  dp_.reset();
  st = StartNewAgent();
  ASSERT_TRUE(st.ok()) << st.message();
  for (const auto& [pin, id] : tcx_links_) EXPECT_EQ(PinnedId(pin), id) << pin;
}

// Pins of the right shape but another ABI version are not adopted silently:
// a newer one is refused by both loaders with both versions named and
// nothing touched; a migration that died after its renames (old version
// stamped, maps already of the new layout) is finished; a pin of a foreign
// layout is refused by the shape check.
TEST_F(AbiTest, PinsOfAnotherAbiVersionAreNotAdoptedSilently) {
  ASSERT_TRUE(StartNewAgent().ok());
  ASSERT_EQ(*PinnedAbiVersion(MapsDir()), static_cast<uint32_t>(WEFT_ABI_VERSION));
  pdp_.reset();
  dp_.reset();

  ASSERT_TRUE(StampMeta(MapsDir(), WEFT_ABI_VERSION + 1).ok());
  const uint32_t endpoints_id = PinnedMapInfo(MapsDir() + "/" WEFT_MAP_ENDPOINTS).id;
  Status st = StartNewAgent();
  ASSERT_FALSE(st.ok()) << "adopted pins of ABI " << WEFT_ABI_VERSION + 1;
  const std::string newer = "ABI " + std::to_string(WEFT_ABI_VERSION + 1);
  EXPECT_NE(st.message().find(newer), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("newer than this agent's ABI " + std::to_string(WEFT_ABI_VERSION)), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("weft-agent cleanup"), std::string::npos) << st.message();
  {
    InNetns in(node_->path());
    policy::PolicyOptions po;
    po.pin_root = pins_->path();
    po.node = "n1";
    auto pdp = policy::PolicyDatapath::Load(po);
    ASSERT_FALSE(pdp.ok()) << "the policy loader adopted them";
    EXPECT_NE(pdp.status().message().find(newer), std::string::npos) << pdp.status().message();
  }
  EXPECT_EQ(PinnedMapInfo(MapsDir() + "/" WEFT_MAP_ENDPOINTS).id, endpoints_id) << "a refused load changed the pins";
  EXPECT_EQ(*PinnedAbiVersion(MapsDir()), static_cast<uint32_t>(WEFT_ABI_VERSION + 1));

  // Stamped 1 with maps already of this layout: finished, stamped again.
  ASSERT_TRUE(StampMeta(MapsDir(), 1).ok());
  st = StartNewAgent();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(*PinnedAbiVersion(MapsDir()), static_cast<uint32_t>(WEFT_ABI_VERSION));
  EXPECT_EQ(PinnedMapInfo(MapsDir() + "/" WEFT_MAP_ENDPOINTS).id, endpoints_id) << "adopted, not migrated again";
  pdp_.reset();
  dp_.reset();

  // A foreign layout where weft_endpoints should be: refused by its shape.
  ASSERT_EQ(unlink((MapsDir() + "/" WEFT_MAP_ENDPOINTS).c_str()), 0);
  UniqueFd foreign(bpf_map_create(BPF_MAP_TYPE_HASH, "weft_endpoints", 4, 20, 16, nullptr));
  ASSERT_TRUE(foreign);
  ASSERT_EQ(bpf_obj_pin(foreign.get(), (MapsDir() + "/" WEFT_MAP_ENDPOINTS).c_str()), 0);
  {
    InNetns in(node_->path());
    policy::PolicyOptions po;
    po.pin_root = pins_->path();
    po.node = "n1";
    auto pdp = policy::PolicyDatapath::Load(po);
    ASSERT_FALSE(pdp.ok());
    EXPECT_NE(pdp.status().message().find("value size is 20 in the pin"), std::string::npos) << pdp.status().message();
  }
}

}  // namespace
}  // namespace weft::ktest
