// A one-node Weft policy topology for the `weftctl flows` / `weftctl trace`
// tests (label `kernel`): a node netns with forwarding and three pods on veths
// (client-0, server-0, stranger-0 in namespace demo), tc_policy loaded by the
// test with its maps pinned at <pin-root>/n1/maps and its programs attached to
// the host veths and pinned at <pin-root>/n1/progs, sock_lb in the same maps
// dir attached to a test cgroup, an agent-style names.json and a lab-style
// state.json (phase "down", so no "running lab" logic ever picks it up).
// Everything is removed in the destructor and, on SIGINT/SIGTERM/SIGHUP, by an
// async-signal-safe handler that then chains to kernel_env's (netns, cgroup,
// children).
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernel/support/kernel_env.hpp"
#include "tests/support/test_util.hpp"
#include "weft/bpf_abi.h"
#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"
#include "weft/sys.hpp"
#include "weft/tc_policy.skel.h"
#include "weft/unique_fd.hpp"

namespace weft::clitest {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using ktest::InNetns;
using ktest::Netns;

constexpr const char* kNode = "n1";
constexpr const char* kClientIp = "10.77.1.2";
constexpr const char* kServerIp = "10.77.2.2";
constexpr const char* kStrangerIp = "10.77.3.2";
constexpr const char* kClientIp6 = "fd77:1::2";
constexpr const char* kServerIp6 = "fd77:2::2";
constexpr uint32_t kClientId = 1001, kServerId = 1002;
constexpr uint32_t kPolAllow8080 = 11, kPolDeny9090 = 12, kPolAny7070 = 13, kPolUdp = 14;
// Service VIPs (socket-LB only; never routed).
constexpr const char* kVipWeb = "10.96.7.1";      // -> server:8080 (allowed)
constexpr const char* kVipDenied = "10.96.7.2";   // -> server:9090 (denied)
constexpr const char* kVipEmpty = "10.96.7.3";    // no backends
constexpr const char* kVipMixed = "10.96.7.4";    // random over 8080 and 9090
constexpr const char* kVipMaglev = "10.96.7.5";   // maglev over 8080 and 9090

// ---- async-signal-safe cleanup of what kernel_env does not own -------------------
struct Emergency {
  char paths[48][512] = {};  // unlinked (files) or rmdir'ed (dirs), in order
  int n = 0;
  struct sigaction prev[4] {};
};
inline Emergency g_emergency;
inline const int kSignals[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

inline void EmergencyCleanup(int sig) {
  for (int i = 0; i < g_emergency.n; ++i)
    if (unlink(g_emergency.paths[i]) != 0) rmdir(g_emergency.paths[i]);
  for (int i = 0; i < 4; ++i)
    if (kSignals[i] == sig && g_emergency.prev[i].sa_handler != SIG_DFL && g_emergency.prev[i].sa_handler != SIG_IGN) {
      g_emergency.prev[i].sa_handler(sig);  // kernel_env's: children, netns, cgroups; re-raises
      return;
    }
  signal(sig, SIG_DFL);
  raise(sig);
}


inline int SocketIn(const std::string& ns, int type, int family = AF_INET) {
  InNetns in(ns);
  if (!in.ok()) return -errno;
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

// TCP connect from `ns` (no cgroup: no socket-LB); 0 or the positive errno.
inline int ConnectFrom(const std::string& ns, const std::string& ip, uint16_t port, int timeout_ms = 2000) {
  int fd = SocketIn(ns, SOCK_STREAM, ip.find(':') == std::string::npos ? AF_INET : AF_INET6);
  if (fd < 0) return -fd;
  UniqueFd s(fd);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  ktest::SockAddr a = ktest::MakeSockAddr(ip, port);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0 ? 0 : errno;
  if (rc == 0) ktest::CloseRst(s.release());
  return rc;
}

class Topology {
 public:
  struct PodNs {
    std::string name, ip, veth;
    std::unique_ptr<Netns> ns;
    uint32_t ifindex = 0;
  };

  // Builds everything; on failure `error` says what.
  std::string Build(const std::string& tag) {
    const std::string suffix = std::to_string(getpid()) + "-" + testing::RandomHex();
    pin_root_ = "/sys/fs/bpf/weft-" + tag + "-" + suffix;
    lab_ = tag + testing::RandomHex();
    lab_dir_ = "/run/weft/lab/" + lab_;
    char tmpl[] = "/tmp/weft-cli-XXXXXX";
    if (!mkdtemp(tmpl)) return "mkdtemp";
    tmp_ = tmpl;
    state_dir_ = tmp_ + "/state";

    auto n = Netns::Create({});
    if (!n.ok()) return n.status().message();
    node_ = std::move(*n);
    // kernel_env has installed its handlers now: chain ours in front.
    RegisterEmergency();

    for (auto [name, ip, veth] : {std::tuple{"client-0", kClientIp, "h1"}, std::tuple{"server-0", kServerIp, "h2"},
                                  std::tuple{"stranger-0", kStrangerIp, "h3"}}) {
      pods_.emplace_back();
      pods_.back().name = name, pods_.back().ip = ip, pods_.back().veth = veth;
    }
    const std::string N = node_->name();
    int i = 1;
    for (auto& p : pods_) {
      auto pn = Netns::Create({});
      if (!pn.ok()) return pn.status().message();
      p.ns = std::move(*pn);
      std::string e = "e" + std::to_string(i), net = "10.77." + std::to_string(i);
      for (const auto& argv : std::vector<std::vector<std::string>>{
               {"ip", "-n", N, "link", "add", p.veth, "type", "veth", "peer", "name", e, "netns", p.ns->name()},
               {"ip", "-n", N, "addr", "add", net + ".1/24", "dev", p.veth},
               {"ip", "-n", N, "link", "set", p.veth, "up"},
               {"ip", "-n", p.ns->name(), "addr", "add", p.ip + "/24", "dev", e},
               {"ip", "-n", p.ns->name(), "link", "set", e, "up"},
               {"ip", "-n", p.ns->name(), "route", "add", "10.77.0.0/16", "via", net + ".1"},
               {"ip", "-n", N, "-6", "addr", "add", "fd77:" + std::to_string(i) + "::1/64", "dev", p.veth, "nodad"},
               {"ip", "-n", p.ns->name(), "-6", "addr", "add", "fd77:" + std::to_string(i) + "::2/64", "dev", e,
                "nodad"},
               {"ip", "-n", p.ns->name(), "-6", "route", "add", "fd77::/16", "via", "fd77:" + std::to_string(i) + "::1"}}) {
        Status st = sys::Run(argv);
        if (!st.ok()) return st.message();
      }
      ++i;
    }
    for (const char* kv : {"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"})
      if (Status st = sys::Run({"ip", "netns", "exec", N, "sysctl", "-qw", kv}); !st.ok()) return st.message();

    // Maps and programs.
    std::error_code ec;
    fs::create_directories(MapsDir(), ec);
    fs::create_directories(ProgsDir(), ec);
    if (ec) return "create " + ProgsDir() + ": " + ec.message();
    bpf_object_open_opts opts{};
    opts.sz = sizeof(opts);
    const std::string maps = MapsDir();
    opts.pin_root_path = maps.c_str();
    skel_ = tc_policy__open_opts(&opts);
    if (!skel_) return "open tc_policy skeleton";
    bpf_map__set_max_entries(skel_->maps.weft_ct, 1 << 14);
    if (int err = tc_policy__load(skel_); err != 0) return std::string("load tc_policy: ") + std::strerror(-err);
    for (auto [prog, name] : {std::pair{skel_->progs.weft_tc_from_pod, "weft_tc_from_pod"},
                              std::pair{skel_->progs.weft_tc_to_pod, "weft_tc_to_pod"}})
      if (int err = bpf_program__pin(prog, (ProgsDir() + "/" + name).c_str()); err != 0)
        return std::string("pin ") + name + ": " + std::strerror(-err);
    {
      InNetns in(node_->path());
      if (!in.ok()) return "enter node netns";
      for (auto& p : pods_) {
        p.ifindex = if_nametoindex(p.veth.c_str());
        if (!p.ifindex) return "ifindex of " + p.veth;
        bpf_tc_hook hook{};
        hook.sz = sizeof(hook);
        hook.ifindex = p.ifindex;
        hook.attach_point = BPF_TC_INGRESS;
        int err = bpf_tc_hook_create(&hook);
        if (err && err != -EEXIST) return "clsact on " + p.veth;
        for (auto [point, prog] : {std::pair{BPF_TC_INGRESS, skel_->progs.weft_tc_from_pod},
                                   std::pair{BPF_TC_EGRESS, skel_->progs.weft_tc_to_pod}}) {
          hook.attach_point = point;
          bpf_tc_opts o{};
          o.sz = sizeof(o);
          o.prog_fd = bpf_program__fd(prog);
          o.handle = 1;
          o.priority = 1;
          if ((err = bpf_tc_attach(&hook, &o)) != 0) return "attach on " + p.veth + ": " + std::strerror(-err);
        }
      }
    }  // the filters go with the node netns

    auto cg = ktest::Cgroup::Create();
    if (!cg.ok()) return cg.status().message();
    cg_ = std::move(*cg);
    auto lb = ktest::SockLb::Load(MapsDir());
    if (!lb.ok()) return lb.status().message();
    lb_ = std::move(*lb);
    if (Status st = lb_->Attach(cg_->path()); !st.ok()) return st.message();

    if (std::string e = ProgramMaps(); !e.empty()) return e;
    if (std::string e = WriteNames(); !e.empty()) return e;
    return WriteLabState();
  }

  ~Topology() { Destroy(); }

  void Destroy() {
    lb_.reset();  // links, its pins
    if (skel_) {
      bpf_object__unpin_maps(skel_->obj, nullptr);
      tc_policy__destroy(skel_);
      skel_ = nullptr;
    }
    for (auto& p : pods_) p.ns.reset();
    node_.reset();  // filters and veths go with it
    cg_.reset();
    std::error_code ec;
    if (!pin_root_.empty()) fs::remove_all(pin_root_, ec);
    if (!lab_dir_.empty()) fs::remove_all(lab_dir_, ec);
    if (!created_labs_dir_.empty()) {
      fs::remove("/run/weft/lab", ec);  // only if empty
      if (created_labs_dir_ == "/run/weft") fs::remove("/run/weft", ec);
    }
    if (!tmp_.empty()) fs::remove_all(tmp_, ec);
    g_emergency.n = 0;
  }

  bool Clean() const {
    std::error_code ec;
    return !fs::exists(pin_root_, ec) && !fs::exists(lab_dir_, ec);
  }

  // ---- map programming -------------------------------------------------------------
  Status PutIdentity(const std::string& ip, uint32_t id) {
    weft_ipcache_key k{};
    ktest::ParseAbiAddr(ip, k.addr);
    k.prefixlen = 128;
    weft_ipcache_val v{id, 0};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_identity), &k, &v, BPF_ANY) != 0)
      return Status::Errno("put identity " + ip, errno);
    return Status::Ok();
  }
  Status PutPolicy(uint32_t ep, uint32_t peer, uint16_t port, uint8_t proto, uint8_t dir, uint8_t verdict,
                   uint32_t policy) {
    weft_policy_key k{ep, peer, port, proto, dir};
    weft_policy_val v{verdict, 0, 0, policy};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_policy), &k, &v, BPF_ANY) != 0)
      return Status::Errno("put policy", errno);
    return Status::Ok();
  }
  Status PutEndpoint(const PodNs& p, uint32_t ep, uint32_t identity, bool in, bool eg) {
    weft_endpoint e{ep, identity, static_cast<uint8_t>(in), static_cast<uint8_t>(eg), 0};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_endpoints), &p.ifindex, &e, BPF_ANY) != 0)
      return Status::Errno("put endpoint", errno);
    return Status::Ok();
  }

  std::string ProgramMaps() {
    const uint8_t T = IPPROTO_TCP, U = IPPROTO_UDP, I = WEFT_DIR_INGRESS;
    const uint8_t A = WEFT_VERDICT_ALLOW, D = WEFT_VERDICT_DENY;
    for (Status st : {PutIdentity(kClientIp, kClientId), PutIdentity(kServerIp, kServerId),
                      PutIdentity(kClientIp6, kClientId), PutIdentity(kServerIp6, kServerId),
                      // the stranger is in no identity cache entry: unknown
                      PutEndpoint(pods_[0], 1, kClientId, false, false), PutEndpoint(pods_[1], 2, kServerId, true, false),
                      PutEndpoint(pods_[2], 3, WEFT_IDENTITY_UNKNOWN, false, false),
                      PutPolicy(2, kClientId, 8080, T, I, A, kPolAllow8080),
                      PutPolicy(2, kClientId, 9090, T, I, D, kPolDeny9090),
                      PutPolicy(2, WEFT_IDENTITY_ANY, 7070, T, I, A, kPolAny7070),
                      PutPolicy(2, kClientId, 0, U, I, A, kPolUdp)})
      if (!st.ok()) return st.message();
    // Services.
    const uint8_t R = WEFT_LB_RANDOM, M = WEFT_LB_MAGLEV;
    for (Status st : {lb_->PutBackend(1, {kServerIp, 8080}), lb_->PutBackend(2, {kServerIp, 9090}),
                      lb_->SetService({kVipWeb, 80}, T, 1, R, 0, {1}),
                      lb_->SetService({kVipDenied, 80}, T, 2, R, 0, {2}),
                      lb_->SetService({kVipEmpty, 80}, T, 3, R, 0, {}),
                      lb_->SetService({kVipMixed, 80}, T, 4, R, 0, {1, 2}),
                      lb_->SetService({kVipMaglev, 80}, T, 5, M, 0, MaglevTable())})
      if (!st.ok()) return st.message();
    return "";
  }

  // A small prime-sized table alternating the two backends (the agent builds a
  // real Maglev table; the BPF only reads slot_count and the slots).
  static std::vector<uint32_t> MaglevTable() {
    std::vector<uint32_t> t(251);
    for (size_t i = 0; i < t.size(); ++i) t[i] = (i * 7 % 3 == 0) ? 1 : 2;
    return t;
  }

  // names.json as the agent writes it (the node-local contract's writer).
  std::string WriteNames() {
    node::NodeNames names;
    names.version = 1;
    names.identities[kClientId] = {kClientId, "spiffe://cluster.local/ns/demo/sa/client", "demo", "client", {}};
    names.identities[kServerId] = {kServerId, "spiffe://cluster.local/ns/demo/sa/server", "demo", "server", {}};
    names.policies[kPolAllow8080] = {kPolAllow8080, "demo/allow-client-8080", "ALLOW"};
    names.policies[kPolDeny9090] = {kPolDeny9090, "demo/deny-9090", "DENY"};
    names.policies[kPolAny7070] = {kPolAny7070, "demo/allow-any-7070", "ALLOW"};
    names.policies[kPolUdp] = {kPolUdp, "demo/allow-udp", "ALLOW"};
    const uint32_t ids[3] = {kClientId, kServerId, WEFT_IDENTITY_UNKNOWN};
    for (size_t i = 0; i < pods_.size(); ++i) {
      node::EndpointName e;
      e.workload = "demo/" + pods_[i].name;
      e.ifindex = pods_[i].ifindex;
      e.ifname = pods_[i].veth;
      e.ep_id = static_cast<uint32_t>(i + 1);
      e.identity = ids[i];
      e.addresses = {pods_[i].ip, "fd77:" + std::to_string(i + 1) + "::2"};
      e.enforce_ingress = i == 1;
      if (i == 1) e.policies = {"demo/allow-client-8080", "demo/deny-9090", "demo/allow-any-7070", "demo/allow-udp"};
      names.endpoints.push_back(std::move(e));
    }
    Status st = node::WriteNamesFile(node::StatePaths(state_dir_, kNode).names, node::RenderNames(names));
    return st.ok() ? "" : st.message();
  }

  std::string WriteLabState() {
    std::error_code ec;
    if (!fs::exists("/run/weft/lab")) created_labs_dir_ = !fs::exists("/run/weft") ? "/run/weft" : "/run/weft/lab";
    fs::create_directories(lab_dir_, ec);
    if (ec) return "create " + lab_dir_ + ": " + ec.message();
    const char* sas[3] = {"client", "server", "stranger"};
    Json pods = Json::array();
    for (size_t i = 0; i < pods_.size(); ++i)
      pods.push_back({{"name", pods_[i].name},
                      {"ns", "demo"},
                      {"node", kNode},
                      {"netns", pods_[i].ns->name()},
                      {"ip", pods_[i].ip},
                      {"ip6", "fd77:" + std::to_string(i + 1) + "::2"},
                      {"node_veth", pods_[i].veth},
                      {"service_account", sas[i]},
                      {"ports", i == 1 ? Json{8080} : Json::array()}});
    Json st = {{"version", 1},
               {"lab", lab_},
               {"phase", "down"},  // never taken for a running lab by other tools
               {"state_dir", lab_dir_},
               {"pin_root", pin_root_},
               {"nodes", {{{"name", kNode}, {"index", 1}, {"netns", node_->name()}}}},
               {"pods", pods},
               {"services",
                {{{"name", "web"}, {"ns", "demo"}, {"vips", {kVipWeb}}},
                 {{"name", "denied"}, {"ns", "demo"}, {"vips", {kVipDenied}}},
                 {{"name", "empty"}, {"ns", "demo"}, {"vips", {kVipEmpty}}},
                 {{"name", "mixed"}, {"ns", "demo"}, {"vips", {kVipMixed}}},
                 {{"name", "maglev"}, {"ns", "demo"}, {"vips", {kVipMaglev}}}}}};
    std::ofstream(lab_dir_ + "/state.json") << st.dump(2);
    return "";
  }

  void RegisterEmergency() {
    g_emergency.n = 0;
    auto add = [](const std::string& p) {
      if (g_emergency.n < 48) std::snprintf(g_emergency.paths[g_emergency.n++], 512, "%s", p.c_str());
    };
    for (const char* m : {WEFT_MAP_IDENTITY, WEFT_MAP_POLICY, WEFT_MAP_CT, WEFT_MAP_ENDPOINTS, WEFT_MAP_DROP_STATS,
                          WEFT_MAP_FLOWS, WEFT_MAP_FLOW_EVENTS, WEFT_MAP_EVENT_STATS, WEFT_MAP_SERVICES, WEFT_MAP_SLOTS,
                          WEFT_MAP_BACKENDS, WEFT_MAP_SVC_STATS, WEFT_MAP_BACKEND_STATS, WEFT_MAP_LB_STATS,
                          WEFT_MAP_SOCK_REV, "weft_policy_rev", WEFT_MAP_FLOW_COUNTERS, WEFT_MAP_FLOW_NEXT})
      add(MapsDir() + "/" + m);
    add(ProgsDir() + "/weft_tc_from_pod");
    add(ProgsDir() + "/weft_tc_to_pod");
    add(MapsDir());
    add(ProgsDir());
    add(pin_root_ + "/" + kNode);
    add(pin_root_);
    add(lab_dir_ + "/state.json");
    add(lab_dir_);
    add(state_dir_ + "/" + kNode + "/names.json");
    add(state_dir_ + "/" + kNode);
    add(state_dir_);
    add(tmp_ + "/cmd.out");
    add(tmp_ + "/cmd.err");
    add(tmp_ + "/follow.out");
    add(tmp_ + "/follow.err");
    add(tmp_);
    static bool installed = false;  // once: `prev` must stay kernel_env's handler
    if (installed) return;
    installed = true;
    struct sigaction sa {};
    sa.sa_handler = EmergencyCleanup;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; ++i) sigaction(kSignals[i], &sa, &g_emergency.prev[i]);
  }

  std::string MapsDir() const { return pin_root_ + "/" + kNode + "/maps"; }
  std::string ProgsDir() const { return pin_root_ + "/" + kNode + "/progs"; }

  std::string pin_root_, lab_, lab_dir_, created_labs_dir_, tmp_, state_dir_;
  std::unique_ptr<Netns> node_;
  std::vector<PodNs> pods_;
  std::unique_ptr<ktest::Cgroup> cg_;
  std::unique_ptr<ktest::SockLb> lb_;
  tc_policy* skel_ = nullptr;
};

// ---- running weftctl --------------------------------------------------------------
struct CmdResult {
  int code = -1;
  std::string out, err;
};

inline CmdResult RunCapture(const std::vector<std::string>& argv, const std::string& tmp, int timeout_s = 60) {
  CmdResult r;
  const std::string out = tmp + "/cmd.out", err = tmp + "/cmd.err";
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (o < 0 || e < 0 || n < 0) _exit(127);
    dup2(n, 0), dup2(o, 1), dup2(e, 2);
    alarm(timeout_s);  // bounded even if the command hangs
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) return r;
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = testing::ReadFile(out);
  r.err = testing::ReadFile(err);
  return r;
}

// Accepts and closes connections on TCP listeners in a netns until stopped.
class Acceptor {
 public:
  Acceptor(const std::string& ns, const std::string& ip, const std::vector<uint16_t>& ports) {
    for (uint16_t port : ports) {
      int fd = SocketIn(ns, SOCK_STREAM, ip.find(':') == std::string::npos ? AF_INET : AF_INET6);
      if (fd < 0) continue;
      UniqueFd l(fd);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      ktest::SockAddr a = ktest::MakeSockAddr(ip, port);
      if (bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0 || listen(fd, 4096) != 0) continue;
      fds_.push_back(std::move(l));
    }
    t_ = std::thread([this] {
      std::vector<pollfd> p;
      for (auto& f : fds_) p.push_back({f.get(), POLLIN, 0});
      while (!stop_) {
        if (poll(p.data(), p.size(), 50) <= 0) continue;
        for (auto& x : p)
          if (x.revents & POLLIN) {
            int c = accept4(x.fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) close(c);
          }
      }
    });
  }
  ~Acceptor() {
    stop_ = true;
    t_.join();
  }
  size_t listening() const { return fds_.size(); }

 private:
  std::vector<UniqueFd> fds_;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

// Whether a loaded program implements the trace contract (the magic constant
// is in its instructions): then weftctl trace must answer from the kernel.
inline bool ProgramHasTraceMode(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0 || !info.xlated_prog_len) return false;
  std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
  uint32_t n = info.xlated_prog_len;
  std::memset(&info, 0, sizeof(info));
  info.xlated_prog_len = n;
  info.xlated_prog_insns = reinterpret_cast<uint64_t>(insns.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return false;
  for (const auto& i : insns)
    if (static_cast<uint32_t>(i.imm) == WEFT_TRACE_MAGIC) return true;
  return false;
}

}  // namespace weft::clitest
