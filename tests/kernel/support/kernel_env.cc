#include "tests/kernel/support/kernel_env.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "weft/sock_lb.skel.h"
#include "weft/sys.hpp"
#include "weft/unique_fd.hpp"

namespace fs = std::filesystem;

namespace weft::ktest {

// ---- emergency cleanup (async-signal-safe) ---------------------------------
namespace {

enum class Kind : int { kFree = 0, kNetns, kCgroup, kPinDir, kChild };
struct Entry {
  std::atomic<int> kind{0};
  char path[256];
  pid_t pid;
};
constexpr int kMaxEntries = 64;
Entry g_entries[kMaxEntries];
const char* const kMapNames[] = {WEFT_MAP_SERVICES,  WEFT_MAP_SLOTS,     WEFT_MAP_BACKENDS,
                                 WEFT_MAP_SVC_STATS, WEFT_MAP_BACKEND_STATS, WEFT_MAP_LB_STATS,
                                 WEFT_MAP_SOCK_REV,
                                 // tc_policy
                                 WEFT_MAP_IDENTITY,  WEFT_MAP_POLICY,    WEFT_MAP_CT,
                                 WEFT_MAP_ENDPOINTS, WEFT_MAP_DROP_STATS, WEFT_MAP_FLOWS,
                                 WEFT_MAP_FLOW_EVENTS, WEFT_MAP_EVENT_STATS, WEFT_MAP_POLICY_REV,
                                 WEFT_MAP_FLOW_COUNTERS, WEFT_MAP_FLOW_NEXT};

void SafeJoin(char* out, size_t n, const char* a, const char* b) {
  size_t i = 0;
  for (; *a && i + 1 < n; ++a) out[i++] = *a;
  for (; *b && i + 1 < n; ++b) out[i++] = *b;
  out[i] = 0;
}

void EmergencyCleanup(int sig) {
  // Children first (they hold the cgroup and the netns), then the rest.
  for (auto& e : g_entries)
    if (e.kind.load() == static_cast<int>(Kind::kChild)) {
      kill(e.pid, SIGKILL);
      waitpid(e.pid, nullptr, 0);
    }
  for (auto& e : g_entries) {
    char buf[320];
    switch (static_cast<Kind>(e.kind.load())) {
      case Kind::kNetns:
        umount2(e.path, MNT_DETACH);
        unlink(e.path);
        break;
      case Kind::kCgroup: {
        SafeJoin(buf, sizeof(buf), e.path, "/cgroup.kill");
        int fd = open(buf, O_WRONLY);
        if (fd >= 0) {
          (void)!write(fd, "1", 1);
          close(fd);
        }
        for (int i = 0; i < 200 && rmdir(e.path) != 0 && errno == EBUSY; ++i) {
          struct timespec ts = {0, 10 * 1000 * 1000};
          nanosleep(&ts, nullptr);
        }
        break;
      }
      case Kind::kPinDir:
        for (const char* m : kMapNames) {
          SafeJoin(buf, sizeof(buf), e.path, "/");
          char full[320];
          SafeJoin(full, sizeof(full), buf, m);
          unlink(full);
        }
        rmdir(e.path);
        break;
      default:
        break;
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallHandlersOnce() {
  static bool done = false;
  if (done) return;
  done = true;
  struct sigaction sa {};
  sa.sa_handler = EmergencyCleanup;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaction(s, &sa, nullptr);
}

int Register(Kind kind, const std::string& path, pid_t pid = 0) {
  InstallHandlersOnce();
  for (int i = 0; i < kMaxEntries; ++i) {
    if (g_entries[i].kind.load() != 0) continue;
    std::snprintf(g_entries[i].path, sizeof(g_entries[i].path), "%s", path.c_str());
    g_entries[i].pid = pid;
    g_entries[i].kind.store(static_cast<int>(kind));
    return i;
  }
  return -1;
}

void Unregister(Kind kind, const std::string& path, pid_t pid = 0) {
  for (auto& e : g_entries)
    if (e.kind.load() == static_cast<int>(kind) && (kind == Kind::kChild ? e.pid == pid : path == e.path))
      e.kind.store(0);
}

void ResetSignalsInChild() {
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(s, SIG_DFL);
}

}  // namespace

// ---- prerequisites ----------------------------------------------------------
bool InCi() {
  const char* ci = std::getenv("CI");
  return ci && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

std::string MissingPrerequisite() {
  if (geteuid() != 0) return "needs root (euid " + std::to_string(geteuid()) + ")";
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "weft_probe", 4, 4, 1, nullptr);
  if (fd < 0) return std::string("bpf(BPF_MAP_CREATE) failed: ") + std::strerror(errno);
  close(fd);
  auto cg = sys::Cgroup2Mount();
  if (!cg.ok()) return cg.status().message();
  if (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 && access("/usr/bin/ip", X_OK) != 0)
    return "iproute2 `ip` not found";
  if (auto st = sys::EnsureBpffs(); !st.ok()) return st.message();
  return "";
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static std::mt19937 rng{std::random_device{}()};
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%04x", static_cast<unsigned>(rng() & 0xffff));
  return prefix + std::to_string(getpid()) + "-" + std::to_string(counter++) + suffix;
}

// ---- Netns ------------------------------------------------------------------
Result<std::unique_ptr<Netns>> Netns::Create(const std::vector<std::string>& addrs) {
  // Kernel limit: names end up in /run/netns; keep them short anyway.
  std::unique_ptr<Netns> ns(new Netns(UniqueName("weftk-")));
  Register(Kind::kNetns, ns->path());
  WEFT_RETURN_IF_ERROR(sys::Run({"ip", "netns", "add", ns->name_}));
  WEFT_RETURN_IF_ERROR(sys::Run({"ip", "-n", ns->name_, "link", "set", "lo", "up"}));
  for (const auto& a : addrs) {
    std::vector<std::string> argv = {"ip", "-n", ns->name_};
    if (a.find(':') != std::string::npos) argv.push_back("-6");
    argv.insert(argv.end(), {"addr", "add", a, "dev", "lo"});
    if (a.find(':') != std::string::npos) argv.push_back("nodad");
    WEFT_RETURN_IF_ERROR(sys::Run(argv));
  }
  return ns;
}

Status Netns::Remove() {
  if (!live_) return Status::Ok();
  live_ = false;
  Status st = sys::Run({"ip", "netns", "del", name_});
  Unregister(Kind::kNetns, path());
  return st;
}

Netns::~Netns() { (void)Remove(); }

// ---- Cgroup -----------------------------------------------------------------
Result<std::unique_ptr<Cgroup>> Cgroup::Create() {
  auto root = sys::Cgroup2Mount();
  if (!root.ok()) return root.status();
  std::unique_ptr<Cgroup> cg(new Cgroup(*root + "/" + UniqueName("weft-ktest-")));
  Register(Kind::kCgroup, cg->path_);
  WEFT_RETURN_IF_ERROR(sys::MakeCgroup(cg->path_));
  return cg;
}

Status Cgroup::Remove() {
  if (!live_) return Status::Ok();
  live_ = false;
  Status st = sys::RemoveCgroup(path_);
  Unregister(Kind::kCgroup, path_);
  return st;
}

Cgroup::~Cgroup() { (void)Remove(); }

// ---- PinDir -----------------------------------------------------------------
Result<std::unique_ptr<PinDir>> PinDir::Create() {
  WEFT_RETURN_IF_ERROR(sys::EnsureBpffs("/sys/fs/bpf"));
  std::unique_ptr<PinDir> d(new PinDir("/sys/fs/bpf/" + UniqueName("weft-ktest-")));
  Register(Kind::kPinDir, d->path_);
  if (mkdir(d->path_.c_str(), 0700) != 0) return Status::Errno("create pin dir " + d->path_, errno);
  return d;
}

Status PinDir::Remove() {
  if (!live_) return Status::Ok();
  live_ = false;
  std::error_code ec;
  Status st;
  for (const auto& e : fs::directory_iterator(path_, ec))
    if (unlink(e.path().c_str()) != 0 && st.ok()) st = Status::Errno("unpin " + e.path().string(), errno);
  if (rmdir(path_.c_str()) != 0 && errno != ENOENT && st.ok()) st = Status::Errno("remove pin dir " + path_, errno);
  Unregister(Kind::kPinDir, path_);
  return st;
}

PinDir::~PinDir() { (void)Remove(); }

// ---- addresses ----------------------------------------------------------------
bool ParseAbiAddr(const std::string& ip, uint8_t out[16]) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    std::memcpy(out, &v6, 16);
    return true;
  }
  return false;
}

weft_svc_key MakeSvcKey(const Endpoint& vip, uint8_t proto) {
  weft_svc_key k{};
  ParseAbiAddr(vip.ip, k.addr);
  k.port = htons(vip.port);
  k.proto = proto;
  return k;
}

// ---- SockLb -------------------------------------------------------------------
Result<std::unique_ptr<SockLb>> SockLb::Load(const std::string& pin_root) {
  std::unique_ptr<SockLb> lb(new SockLb());
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  // Always set: with LIBBPF_PIN_BY_NAME and no pin root libbpf pins (and
  // reuses!) /sys/fs/bpf/<map>.
  opts.pin_root_path = pin_root.c_str();
  lb->skel_ = sock_lb__open_opts(&opts);
  if (!lb->skel_) return Status::Errno("open sock_lb skeleton", errno);
  // Small maps for tests: the default capacities are the production ones.
  bpf_map__set_max_entries(lb->skel_->maps.weft_slots, 1 << 16);
  if (int err = sock_lb__load(lb->skel_); err != 0)
    return Status::Errno("load sock_lb (pins under " + pin_root + ")", -err);
  return lb;
}

Status SockLb::Attach(const std::string& cgroup_path) {
  UniqueFd cg(open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return Status::Errno("open cgroup " + cgroup_path, errno);
  bpf_program* progs[] = {skel_->progs.weft_connect4,     skel_->progs.weft_connect6,
                          skel_->progs.weft_sendmsg4,     skel_->progs.weft_sendmsg6,
                          skel_->progs.weft_recvmsg4,     skel_->progs.weft_recvmsg6,
                          skel_->progs.weft_getpeername4, skel_->progs.weft_getpeername6};
  for (bpf_program* p : progs) {
    bpf_link* l = bpf_program__attach_cgroup(p, cg.get());
    if (!l) {
      int err = errno;
      return Status::Errno(std::string("attach ") + bpf_program__name(p) + " to " + cgroup_path, err);
    }
    links_.push_back(l);
  }
  return Status::Ok();
}

void SockLb::Detach() {
  for (bpf_link* l : links_) bpf_link__destroy(l);
  links_.clear();
}

void SockLb::Destroy() {
  Detach();
  if (skel_) {
    bpf_object__unpin_maps(skel_->obj, nullptr);
    sock_lb__destroy(skel_);
    skel_ = nullptr;
  }
}

SockLb::~SockLb() { Destroy(); }

Status SockLb::PutBackend(uint32_t id, const Endpoint& ep) {
  weft_backend be{};
  if (!ParseAbiAddr(ep.ip, be.addr)) return Status::Error("bad backend address " + ep.ip);
  be.port = htons(ep.port);
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_backends), &id, &be, BPF_ANY) != 0)
    return Status::Errno("write backend " + std::to_string(id), errno);
  return Status::Ok();
}

Status SockLb::DeleteBackend(uint32_t id) {
  if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.weft_backends), &id) != 0)
    return Status::Errno("delete backend " + std::to_string(id), errno);
  return Status::Ok();
}

Status SockLb::SetService(const Endpoint& vip, uint8_t proto, uint32_t svc_id, uint8_t algo, uint8_t flags,
                          const std::vector<uint32_t>& slots) {
  int svc_fd = bpf_map__fd(skel_->maps.weft_services);
  int slot_fd = bpf_map__fd(skel_->maps.weft_slots);
  weft_svc_key key = MakeSvcKey(vip, proto);
  weft_svc_val old{};
  bool had = bpf_map_lookup_elem(svc_fd, &key, &old) == 0;
  uint16_t gen = had ? static_cast<uint16_t>(old.gen + 1) : 1;
  for (size_t i = 0; i < slots.size(); ++i) {
    weft_slot_key sk{svc_id, gen, static_cast<uint16_t>(i)};
    if (bpf_map_update_elem(slot_fd, &sk, &slots[i], BPF_ANY) != 0)
      return Status::Errno("write slot " + std::to_string(i) + " of service " + std::to_string(svc_id), errno);
  }
  weft_svc_val val{};
  val.svc_id = svc_id;
  val.gen = gen;
  val.slot_count = static_cast<uint16_t>(slots.size());
  val.algo = algo;
  val.flags = flags;
  if (bpf_map_update_elem(svc_fd, &key, &val, BPF_ANY) != 0)
    return Status::Errno("write service " + vip.ip, errno);
  if (had)
    for (uint32_t i = 0; i < old.slot_count; ++i) {
      weft_slot_key sk{old.svc_id, old.gen, static_cast<uint16_t>(i)};
      bpf_map_delete_elem(slot_fd, &sk);
    }
  return Status::Ok();
}

Result<std::vector<uint8_t>> SockLb::GetServiceRaw(const Endpoint& vip, uint8_t proto) {
  weft_svc_key key = MakeSvcKey(vip, proto);
  std::vector<uint8_t> raw(bpf_map__value_size(skel_->maps.weft_services));
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_services), &key, raw.data()) != 0)
    return Status::Errno("read service " + vip.ip, errno);
  return raw;
}

Result<weft_svc_val> SockLb::GetService(const Endpoint& vip, uint8_t proto) {
  auto raw = GetServiceRaw(vip, proto);
  if (!raw.ok()) return raw.status();
  weft_svc_val v{};
  std::memcpy(&v, raw->data(), sizeof(v));
  return v;
}

Result<size_t> SockLb::CountSlots(uint32_t svc_id) {
  int fd = bpf_map__fd(skel_->maps.weft_slots);
  weft_slot_key cur{}, next{};
  size_t n = 0;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (next.svc_id == svc_id) ++n;
    cur = next;
    prev = &cur;
  }
  return n;
}

namespace {
template <typename T>
Result<std::vector<T>> PerCpu(bpf_map* map, uint32_t key) {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Status::Error("count possible CPUs", -ncpu);
  static_assert(sizeof(T) % 8 == 0);
  std::vector<T> vals(ncpu);
  if (bpf_map_lookup_elem(bpf_map__fd(map), &key, vals.data()) != 0)
    return Status::Errno(std::string("read ") + bpf_map__name(map) + "[" + std::to_string(key) + "]", errno);
  return vals;
}
}  // namespace

Result<weft_svc_stats> SockLb::SvcStats(uint32_t svc_id) {
  auto v = PerCpu<weft_svc_stats>(skel_->maps.weft_svc_stats, svc_id);
  if (!v.ok()) return v.status();
  weft_svc_stats sum{};
  for (const auto& s : *v) {
    sum.connects += s.connects;
    sum.no_backend += s.no_backend;
  }
  return sum;
}

Result<uint64_t> SockLb::BackendConnects(uint32_t backend_id) {
  auto v = PerCpu<weft_backend_stats>(skel_->maps.weft_be_stats, backend_id);
  if (!v.ok()) return v.status();
  uint64_t sum = 0;
  for (const auto& s : *v) sum += s.connects;
  return sum;
}

Result<uint64_t> SockLb::LbStat(uint32_t reason) {
  auto v = PerCpu<uint64_t>(skel_->maps.weft_lb_stats, reason);
  if (!v.ok()) return v.status();
  uint64_t sum = 0;
  for (uint64_t s : *v) sum += s;
  return sum;
}

// ---- running code in netns + cgroup -------------------------------------------------
Result<std::string> RunInNetnsCgroup(const std::string& netns_path, const std::string& cgroup_path,
                                     const std::function<std::string()>& fn, int timeout_ms) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) return Status::Errno("pipe for child", errno);
  UniqueFd rd(pfd[0]), wr(pfd[1]);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::Errno("fork child", errno);
  if (pid == 0) {
    ResetSignalsInChild();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    rd.reset();
    auto fail = [&](const std::string& what) {
      std::string msg = "E" + what + ": " + std::strerror(errno);
      (void)!write(wr.get(), msg.data(), msg.size());
      _exit(125);
    };
    // Join the cgroup first: it is our own pid and we still see the cgroup2 mount.
    int cfd = open((cgroup_path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (cfd < 0) fail("open " + cgroup_path + "/cgroup.procs");
    std::string me = std::to_string(getpid());
    if (write(cfd, me.data(), me.size()) < 0) fail("join cgroup " + cgroup_path);
    close(cfd);
    int nfd = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nfd < 0) fail("open netns " + netns_path);
    if (setns(nfd, CLONE_NEWNET) != 0) fail("enter netns " + netns_path);
    close(nfd);
    std::string out = "O" + fn();
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = write(wr.get(), out.data() + off, out.size() - off);
      if (n <= 0) _exit(124);
      off += n;
    }
    _exit(0);
  }
  Register(Kind::kChild, "", pid);
  wr.reset();
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{rd.get(), POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    char buf[4096];
    ssize_t n = read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Unregister(Kind::kChild, "", pid);
  if (timed_out) return Status::Error("child in " + netns_path + " timed out after " + std::to_string(timeout_ms) + "ms");
  if (!out.empty() && out[0] == 'E') return Status::Error("child: " + out.substr(1));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.empty())
    return Status::Error("child in " + netns_path + " died (status " + std::to_string(status) + ")");
  return out.substr(1);
}

// ---- sockets ------------------------------------------------------------------
SockAddr MakeSockAddr(const std::string& ip, uint16_t port) {
  SockAddr a;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
  }
  return a;
}

std::string FormatSockAddr(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(s4->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(s6->sin6_port));
  }
  return "family" + std::to_string(ss.ss_family);
}

namespace {
int BoundSocket(const Endpoint& ep, int type) {
  SockAddr a = MakeSockAddr(ep.ip, ep.port);
  int fd = socket(a.family(), type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}
}  // namespace

int ListenTcp(const Endpoint& ep) {
  int fd = BoundSocket(ep, SOCK_STREAM);
  if (fd < 0) return fd;
  if (listen(fd, 1024) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int BindUdp(const Endpoint& ep) { return BoundSocket(ep, SOCK_DGRAM); }

int ConnectTcp(int family, const Endpoint& dst, int timeout_ms, bool dual_stack) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (family == AF_INET6) {
    int v6only = dual_stack ? 0 : 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  SockAddr a = MakeSockAddr(dst.ip, dst.port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int AcceptOne(const std::vector<int>& listeners, int timeout_ms) {
  std::vector<pollfd> p;
  for (int l : listeners) p.push_back({l, POLLIN, 0});
  int r;
  do {
    r = poll(p.data(), p.size(), timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!(p[i].revents & POLLIN)) continue;
    int c = accept4(listeners[i], nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    CloseRst(c);
    return static_cast<int>(i);
  }
  return -1;
}

void CloseRst(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

Result<TwoPodNode> MakeTwoPodNode() {
  TwoPodNode t;
  for (auto* ns : {&t.node, &t.p1, &t.p2}) {
    auto n = Netns::Create({});
    if (!n.ok()) return n.status();
    *ns = std::move(*n);
  }
  const std::string N = t.node->name(), P1 = t.p1->name(), P2 = t.p2->name();
  const std::vector<std::vector<std::string>> steps = {
      {"ip", "-n", N, "link", "add", "h1", "type", "veth", "peer", "name", "e1", "netns", P1},
      {"ip", "-n", N, "link", "add", "h2", "type", "veth", "peer", "name", "e2", "netns", P2},
      {"ip", "-n", N, "addr", "add", "10.77.1.1/24", "dev", "h1"},
      {"ip", "-n", N, "addr", "add", "10.77.2.1/24", "dev", "h2"},
      {"ip", "-n", N, "link", "set", "h1", "up"},
      {"ip", "-n", N, "link", "set", "h2", "up"},
      {"ip", "netns", "exec", N, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
      {"ip", "-n", P1, "addr", "add", "10.77.1.2/24", "dev", "e1"},
      {"ip", "-n", P1, "link", "set", "e1", "up"},
      {"ip", "-n", P1, "route", "add", "10.77.2.0/24", "via", "10.77.1.1"},
      {"ip", "-n", P2, "addr", "add", "10.77.2.2/24", "dev", "e2"},
      {"ip", "-n", P2, "link", "set", "e2", "up"},
      {"ip", "-n", P2, "route", "add", "10.77.1.0/24", "via", "10.77.2.1"},
  };
  for (const auto& argv : steps)
    if (Status st = sys::Run(argv); !st.ok()) return st.Wrap("two-pod node");
  InNetns in(t.node->path());
  t.h1 = if_nametoindex("h1");
  t.h2 = if_nametoindex("h2");
  if (!in.ok() || !t.h1 || !t.h2) return Status::Error("two-pod node: ifindex of h1/h2 in " + N);
  return t;
}

}  // namespace weft::ktest
