// Test support for kernel tests (label `kernel`): RAII owners for everything a
// test creates (network namespace, cgroup, bpffs pin dir, the loaded sock_lb
// skeleton and its cgroup links), a way to run client code inside
// netns+cgroup (a forked child, never the test runner), and typed map access.
//
// Every resource also sits in an async-signal-safe registry so that SIGINT /
// SIGTERM / SIGHUP remove it before the runner dies (safety rule 4).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

struct sock_lb;
struct bpf_link;

namespace weft::ktest {

// Empty when the kernel tests can run; otherwise why not (no root, no BPF,
// no cgroup2, no `ip`).
std::string MissingPrerequisite();
bool InCi();  // CI=true in the environment: a missing prerequisite fails.

// In SetUp(): skip with the reason, or fail under CI=true.
#define WEFT_REQUIRE_KERNEL()                                                   \
  do {                                                                          \
    std::string _why = ::weft::ktest::MissingPrerequisite();                    \
    if (!_why.empty()) {                                                        \
      if (::weft::ktest::InCi()) FAIL() << "CI=true and kernel tests cannot run: " << _why; \
      GTEST_SKIP() << "kernel test skipped: " << _why;                          \
    }                                                                           \
  } while (0)

// "<prefix><pid>-<n><random hex>": unique per run and per call.
std::string UniqueName(const std::string& prefix);

// A network namespace with only `lo`, up, carrying `addrs` (CIDR strings,
// e.g. "10.250.0.1/32", "fd00:250::1/128"). No default route.
class Netns {
 public:
  static Result<std::unique_ptr<Netns>> Create(const std::vector<std::string>& addrs);
  ~Netns();
  Status Remove();  // idempotent
  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }

 private:
  explicit Netns(std::string name) : name_(std::move(name)) {}
  std::string name_;
  bool live_ = true;
};

// Runs the calling thread in a network namespace (a netns file) until
// destroyed; never leaves it there.
class InNetns {
 public:
  explicit InNetns(const std::string& path) : self_(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    UniqueFd target(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ok_ = self_ && target && setns(target.get(), CLONE_NEWNET) == 0;
  }
  ~InNetns() {
    if (self_ && setns(self_.get(), CLONE_NEWNET) != 0) std::abort();  // never stay in a test netns
  }
  bool ok() const { return ok_; }

 private:
  UniqueFd self_;
  bool ok_ = false;
};

// Two pods behind a node, for the TC policy tests: netns `node` forwards
// between host veth h1 (10.77.1.1/24) <-> e1 in `p1` (10.77.1.2/24) and h2
// (10.77.2.1/24) <-> e2 in `p2` (10.77.2.2/24); each pod routes the other's
// /24 via the node. The links are created inside `node` and moved straight
// into the pods: nothing ever exists in the host namespace.
struct TwoPodNode {
  std::unique_ptr<Netns> node, p1, p2;
  uint32_t h1 = 0, h2 = 0;  // ifindexes of the host-side veths in `node`
};
Result<TwoPodNode> MakeTwoPodNode();

// <cgroup2>/weft-ktest-<pid>-<n>.
class Cgroup {
 public:
  static Result<std::unique_ptr<Cgroup>> Create();
  ~Cgroup();
  Status Remove();
  const std::string& path() const { return path_; }

 private:
  explicit Cgroup(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool live_ = true;
};

// /sys/fs/bpf/weft-ktest-<pid>-<n>: the pin root of one test's maps.
class PinDir {
 public:
  static Result<std::unique_ptr<PinDir>> Create();
  ~PinDir();
  Status Remove();  // unlinks the pins inside, then the directory
  const std::string& path() const { return path_; }

 private:
  explicit PinDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool live_ = true;
};

// An address as the maps hold it (16 bytes, IPv4-mapped) + port in host order.
struct Endpoint {
  std::string ip;     // "10.250.0.1" or "fd00:250::1"
  uint16_t port = 0;  // host byte order
};
bool ParseAbiAddr(const std::string& ip, uint8_t out[16]);

// The sock_lb skeleton, loaded with its maps pinned under a PinDir, and the 8
// programs attached to a cgroup through bpf_links. Map writes are typed.
class SockLb {
 public:
  static Result<std::unique_ptr<SockLb>> Load(const std::string& pin_root);
  ~SockLb();
  Status Attach(const std::string& cgroup_path);
  void Detach();
  void Destroy();  // links, pins, skeleton; idempotent

  struct sock_lb* skel() const { return skel_; }

  Status PutBackend(uint32_t id, const Endpoint& ep);
  Status DeleteBackend(uint32_t id);
  // Installs `slots` (backend id per slot, slot_count = slots.size()) as a new
  // generation of the service, the way the agent does: write new slots, flip
  // the service entry, delete the old generation's slots.
  Status SetService(const Endpoint& vip, uint8_t proto, uint32_t svc_id, uint8_t algo, uint8_t flags,
                    const std::vector<uint32_t>& slots);
  Result<weft_svc_val> GetService(const Endpoint& vip, uint8_t proto);
  // Raw value bytes, for BTF-driven field reads.
  Result<std::vector<uint8_t>> GetServiceRaw(const Endpoint& vip, uint8_t proto);
  Result<size_t> CountSlots(uint32_t svc_id);

  // Sums over CPUs.
  Result<weft_svc_stats> SvcStats(uint32_t svc_id);
  Result<uint64_t> BackendConnects(uint32_t backend_id);
  Result<uint64_t> LbStat(uint32_t reason);

 private:
  SockLb() = default;
  struct sock_lb* skel_ = nullptr;
  std::vector<bpf_link*> links_;
};

weft_svc_key MakeSvcKey(const Endpoint& vip, uint8_t proto);

// Runs `fn` in a forked child that first joins `cgroup` (writes its own pid to
// cgroup.procs while still in our mount namespace) and then setns()es into
// `netns`. The child's return string comes back through a pipe. The child is
// killed after `timeout_ms`. The test runner itself never moves.
Result<std::string> RunInNetnsCgroup(const std::string& netns_path, const std::string& cgroup_path,
                                     const std::function<std::string()>& fn, int timeout_ms = 60000);

// ---- socket helpers for code running in the child -------------------------
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
};
SockAddr MakeSockAddr(const std::string& ip, uint16_t port);
std::string FormatSockAddr(const sockaddr_storage& ss);  // "10.96.0.10:80", "[fd00:96::a]:80"
// Listening TCP / bound UDP socket; -errno on failure.
int ListenTcp(const Endpoint& ep);
int BindUdp(const Endpoint& ep);
// Blocking connect with SO_SNDTIMEO/SO_RCVTIMEO of timeout_ms; returns fd or -errno.
int ConnectTcp(int family, const Endpoint& dst, int timeout_ms = 2000, bool dual_stack = false);
// Index of the listener that has a pending connection (accepts and closes
// it), or -1 after timeout_ms.
int AcceptOne(const std::vector<int>& listeners, int timeout_ms = 2000);
// Close with RST (SO_LINGER 0): no TIME_WAIT pile-up over thousands of connects.
void CloseRst(int fd);

}  // namespace weft::ktest
