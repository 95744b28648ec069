// weftctl lab up | down | exec | status | apply | restart-agent.
//
// Topology (names inside a netns are local to it; no link is ever created in
// the host netns):
//   <lab>-fabric   bridge br0; ports n<i> (peer of node i's fab0)
//   <lab>-node<i>  fab0 = 10.243.0.<i>/24, fd00:243::<i>/64; forwarding on;
//                  routes to 10.244.<j>.0/24 and fd00:244:<j>::/64 via node j;
//                  lo holds 10.244.<i>.1 (the pods' gateway); p<k> per pod
//                  with fe80::1 (the pods' IPv6 gateway) and a /32 + /128
//                  route to the pod.
//   <lab>-<pod>    eth0 = 10.244.<i>.<n>/32, fd00:244:<i>::<n>/128; routes to
//                  10.244.0.0/16 and fd00:244::/32 only. No default route
//                  anywhere; service VIPs are routed nowhere.
// Cgroups: <cg2>/weft-lab-<lab>/node<i>/<pod>. Pins: /sys/fs/bpf/weft-lab-<lab>.
// Control plane: one weft-controller per lab in the host netns (store and
// admin socket under <state dir>/controller/, ConfigDiscovery on a free
// 127.0.0.1 port); the user's file and one WorkloadEntry per pod are applied
// through its Admin API and every agent runs with --controller.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "cli/command.hpp"
#include "cli/lab/control.hpp"
#include "cli/lab/lab.hpp"
#include "cli/lab/net.hpp"
#include "cli/lab/probe.hpp"
#include "cli/lab/spec.hpp"
#include "cli/lab/state.hpp"
#include "weft/credentials.hpp"
#include "weft/node/paths.hpp"
#include "weft/sys.hpp"

namespace fs = std::filesystem;

namespace weft::cli::lab {

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_signal = 0;
volatile pid_t g_child = 0;

void OnSignal(int sig) {
  g_signal = sig;
  if (g_child > 0) kill(g_child, sig);
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
}

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "weftctl lab: %s\n", msg.c_str());
  return code;
}

void Warn(const std::string& msg) { std::fprintf(stderr, "weftctl lab: warning: %s\n", msg.c_str()); }

bool ValidLabName(const std::string& s) {
  // No '-': every object of lab X is named "X-..." and must not match lab "X-y".
  static const std::regex re("[a-z][a-z0-9]{0,15}");
  return std::regex_match(s, re);
}

std::string PinRoot(const std::string& lab) { return "/sys/fs/bpf/weft-lab-" + lab; }
std::string CgroupRoot(const std::string& cg2, const std::string& lab) { return cg2 + "/weft-lab-" + lab; }
std::string NodeName(int i) { return "node" + std::to_string(i); }

std::string Absolute(const std::string& p) {
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

Result<std::string> FindBinary(const std::string& flag_value, const char* env, const std::string& rel,
                               const std::string& target) {
  std::string path = flag_value;
  if (path.empty() && std::getenv(env)) path = std::getenv(env);
  if (path.empty()) path = sys::SelfDir() + "/" + rel;
  path = Absolute(path);
  if (access(path.c_str(), X_OK) != 0)
    return Status::Error(target + " not found at " + path + " (build target " + target + ", or set " + env + ")");
  return path;
}

// A node's one-time join token (0600, never on a command line) and the
// agent's credentials dir (its default: <state-dir>/<node>/credentials).
std::string JoinTokenFile(const LabState& st, const NodeState& n) { return st.state_dir + "/" + n.name + "/join-token"; }
std::string AgentCredentials(const LabState& st, const NodeState& n) {
  return node::StatePaths(AgentsStateDir(st), n.name).credentials;
}

std::vector<std::string> AgentArgv(const LabState& st, const NodeState& n) {
  std::vector<std::string> argv = {st.agent_bin,          "run",        "--node",    n.name,
                                   "--cgroup",            n.cgroup,     "--controller", st.controller.listen,
                                   "--pin-root",          st.pin_root,  "--metrics", n.agent.metrics,
                                   // The pods' host-side veths live in the node's netns; names.json for weftctl.
                                   "--netns",             "/run/netns/" + n.netns,
                                   "--state-dir",         st.state_dir + "/agents",  // AgentsStateDir
                                   // The VIPs the lab's controller allocates: anything else is refused.
                                   "--service-cidr",      control::kServiceCidr,
                                   "--service-cidr-v6",   control::kServiceCidrV6,
                                   // Used only while the node has no credentials (first start).
                                   "--join-token-file",   JoinTokenFile(st, n)};
  argv.insert(argv.end(), st.agent_args.begin(), st.agent_args.end());
  return argv;
}

std::vector<PodView> ServingPods(const LabState& st) {
  std::vector<PodView> out;
  for (const auto& p : st.pods) {
    if (!p.serving) continue;
    PodView v{p.name, p.ns, p.ip, st.dual_stack ? p.ip6 : "", p.labels, p.service_account, {}, p.node};
    for (size_t i = 0; i < p.ports.size(); ++i)
      v.ports.push_back({i < p.port_names.size() ? p.port_names[i] : "", static_cast<uint16_t>(p.ports[i])});
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno("read " + path, errno ? errno : ENOENT);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One Apply (one transaction): the user's file as written (so messages show
// its name and lines) plus the serving pods' WorkloadEntries (kept in the
// state dir as workloads.yaml). Prints changes and warnings like weftctl apply.
control::CallResult ApplyThroughController(const LabState& st, const std::string& file, const std::string& text,
                                           bool quiet) {
  std::string workloads = RenderPodWorkloads(ServingPods(st));
  std::string wpath = st.state_dir + "/workloads.yaml";
  if (auto s = WriteFileAtomic(wpath, workloads); !s.ok()) return {2, s.message(), {}, {}};
  auto r = control::Apply(st, {{file, text}, {wpath, workloads}});
  if (r.exit_code == 0) {
    if (!quiet)
      for (const auto& c : r.changes)
        if (c.find(" unchanged") == std::string::npos) std::printf("  %s\n", c.c_str());
    for (const auto& w : r.warnings) std::fprintf(stderr, "Warning: %s\n", w.c_str());
  }
  return r;
}

Status WriteHostsFiles(const LabState& st) {
  for (const auto& p : st.pods) {
    PodView v{p.name, p.ns, p.ip, st.dual_stack ? p.ip6 : "", {}, {}, {}, p.node};
    WEFT_RETURN_IF_ERROR(WriteFileAtomic(p.hosts, RenderHosts(v, st.services)));
  }
  return Status::Ok();
}

// A node without credentials gets a fresh join token (as an operator would
// run `weftctl node join-token`); one with credentials keeps them across
// restarts and needs none.
Status EnsureJoinToken(const LabState& st, const NodeState& n) {
  std::error_code ec;
  if (fs::exists(AgentCredentials(st, n) + "/cert.pem", ec) && fs::exists(JoinTokenFile(st, n), ec))
    return Status::Ok();
  auto token = control::CreateJoinToken(st, n.name);
  if (!token.ok()) return token.status();
  return sys::WriteFileAtomic(JoinTokenFile(st, n), *token + "\n", 0600);
}

// Starts node's agent on a fresh metrics port and records it (caller saves).
Status StartAgent(LabState& st, NodeState& n) {
  WEFT_RETURN_IF_ERROR(EnsureJoinToken(st, n).Wrap("join token for " + n.name));
  auto port = probe::FreeLoopbackPort();
  if (!port.ok()) return port.status();
  n.agent.metrics = "127.0.0.1:" + std::to_string(*port);
  sys::SpawnOptions o;
  o.log_path = n.agent.log;
  auto pid = sys::Spawn(AgentArgv(st, n), o);
  if (!pid.ok()) return pid.status().Wrap("start weft-agent for " + n.name);
  n.agent.pid = *pid;
  return Status::Ok();
}

Status WaitAgentHealthy(const NodeState& n, Clock::time_point deadline) {
  for (;;) {
    if (probe::HttpGetStatus(n.agent.metrics, "/healthz", 500) == 200) return Status::Ok();
    if (!probe::Alive(n.agent.pid)) {
      waitpid(n.agent.pid, nullptr, WNOHANG);
      return Status::Error("weft-agent of " + n.name + " (pid " + std::to_string(n.agent.pid) + ") exited; " +
                           n.agent.log + " ends with:\n" + probe::LogTail(n.agent.log, 15));
    }
    if (g_signal) return Status::Error("interrupted");
    if (Clock::now() > deadline)
      return Status::Error("weft-agent of " + n.name + ": GET http://" + n.agent.metrics +
                           "/healthz not 200 in time; " + n.agent.log + " ends with:\n" + probe::LogTail(n.agent.log, 15));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Waits until the agent's metrics say weft_backends_withheld 0 (every local
// pod placed).
Status WaitNoBackendWithheld(const NodeState& n, Clock::time_point deadline) {
  std::string last = "no answer";
  for (;;) {
    std::string body;
    if (probe::HttpGet(n.agent.metrics, "/metrics", 1000, &body) == 200) {
      auto v = probe::MetricValue(body, "weft_backends_withheld");
      if (v && *v == 0) return Status::Ok();
      last = v ? "weft_backends_withheld " + std::to_string(static_cast<long long>(*v)) : "no weft_backends_withheld";
    }
    if (g_signal) return Status::Error("interrupted");
    if (Clock::now() > deadline)
      return Status::Error("weft-agent of " + n.name + ": backends still withheld in time (" + last + "); " +
                           n.agent.log + " ends with:\n" + probe::LogTail(n.agent.log, 15));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------- down

struct DownReport {
  std::vector<std::string> errors;
};

std::vector<std::string> LabNetns(const std::string& lab) {
  std::vector<std::string> out;
  for (const auto& ns : net::ListNetns())
    if (ns.rfind(lab + "-", 0) == 0) out.push_back(ns);
  return out;
}

std::vector<std::string> LabEtcNetns(const std::string& lab) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/etc/netns", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(lab + "-", 0) == 0) out.push_back(e.path().string());
  }
  return out;
}

// Everything of `lab` that still exists, one line each (empty: all gone).
std::vector<std::string> Leftovers(const std::string& lab, const std::string& cg_root, const std::string& pin_root,
                                   const std::vector<pid_t>& pids) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& ns : LabNetns(lab)) out.push_back("netns " + ns);
  for (const auto& d : LabEtcNetns(lab)) out.push_back("dir " + d);
  if (!cg_root.empty() && fs::exists(cg_root, ec)) out.push_back("cgroup " + cg_root);
  if (fs::exists(pin_root, ec)) out.push_back("pin dir " + pin_root);
  for (pid_t p : probe::FindProcesses("weft-agent", "--pin-root", pin_root))
    out.push_back("process weft-agent pid " + std::to_string(p));
  for (pid_t p : probe::FindProcesses("weft-controller", "--data-dir", ControllerDir(lab) + "/data"))
    out.push_back("process weft-controller pid " + std::to_string(p));
  for (pid_t p : pids)
    if (probe::Alive(p)) out.push_back("process pid " + std::to_string(p));
  return out;
}

int DoDown(const std::string& lab, bool quiet) {
  auto loaded = LoadState(lab);
  LabState st;
  bool have_state = loaded.ok();
  if (have_state) st = *loaded;
  std::string pin_root = have_state && !st.pin_root.empty() ? st.pin_root : PinRoot(lab);
  std::string cg_root = st.cgroup_root;
  if (cg_root.empty()) {
    if (auto cg2 = sys::Cgroup2Mount(); cg2.ok()) cg_root = CgroupRoot(*cg2, lab);
  }
  std::string agent_bin = st.agent_bin;
  if (agent_bin.empty()) {
    auto b = FindBinary("", "WEFT_AGENT_BIN", "../agent/weft-agent", "weft-agent");
    if (b.ok()) agent_bin = *b;
  }
  std::vector<std::string> errors;
  std::vector<pid_t> started;

  // 1. Agents: the recorded pids and any weft-agent running with our pin root.
  std::set<pid_t> agents;
  for (const auto& n : st.nodes)
    if (n.agent.pid > 0) agents.insert(n.agent.pid), started.push_back(n.agent.pid);
  for (pid_t p : probe::FindProcesses("weft-agent", "--pin-root", pin_root)) agents.insert(p);
  for (pid_t p : agents) probe::StopProcess(p, "weft-agent", 5000);

  // 1b. The controller (after the agents, so they do not log a lost stream):
  // the recorded pid and any weft-controller on this lab's data dir.
  std::set<pid_t> controllers;
  if (st.controller.pid > 0) controllers.insert(st.controller.pid), started.push_back(st.controller.pid);
  for (pid_t p : probe::FindProcesses("weft-controller", "--data-dir", ControllerDir(lab) + "/data"))
    controllers.insert(p);
  for (pid_t p : controllers) probe::StopProcess(p, "weft-controller", 5000);

  // 2. The agents' own cleanup (links, pins) per node.
  std::set<std::string> nodes;
  for (const auto& n : st.nodes) nodes.insert(n.name);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pin_root, ec))
    if (e.is_directory()) nodes.insert(e.path().filename().string());
  static const std::regex node_ns("node[0-9]+");
  for (const auto& ns : LabNetns(lab))
    if (std::regex_match(ns.substr(lab.size() + 1), node_ns)) nodes.insert(ns.substr(lab.size() + 1));
  if (fs::exists(pin_root, ec)) {
    if (agent_bin.empty()) {
      Warn("weft-agent binary not found: removing " + pin_root + " without `weft-agent cleanup`");
    } else {
      std::map<std::string, std::string> netns_of;
      for (const auto& n : st.nodes) netns_of[n.name] = n.netns;
      for (const auto& n : nodes) {
        std::string out;
        const std::string ns = netns_of.count(n) ? netns_of[n] : lab + "-" + n;
        auto rc = sys::RunCommand({agent_bin, "cleanup", "--node", n, "--pin-root", pin_root, "--netns",
                                   "/run/netns/" + ns, "--state-dir", StateDir(lab) + "/agents"},
                                  &out);
        if (!rc.ok() || *rc != 0) Warn("weft-agent cleanup --node " + n + " failed: " + (rc.ok() ? out : rc.status().message()));
      }
    }
  }

  // 3. Pods: killing the lab's cgroup subtree stops every echo and every `lab exec`.
  for (const auto& p : st.pods)
    if (p.pid > 0) started.push_back(p.pid);
  if (!cg_root.empty())
    if (auto s = sys::RemoveCgroup(cg_root); !s.ok()) errors.push_back(s.message());
  for (const auto& p : st.pods)
    if (p.pid > 0) probe::StopProcess(p.pid, "weft-echo", 2000);  // escaped the cgroup?

  // 4. Namespaces (veths go with them), /etc/netns, pins, state.
  for (const auto& ns : LabNetns(lab))
    if (auto s = net::DelNetns(ns); !s.ok()) errors.push_back(s.message());
  for (const auto& d : LabEtcNetns(lab)) {
    fs::remove_all(d, ec);
    if (ec) errors.push_back("remove " + d + ": " + ec.message());
  }
  fs::remove_all(pin_root, ec);
  if (ec) errors.push_back("remove " + pin_root + ": " + ec.message());

  auto left = Leftovers(lab, cg_root, pin_root, started);
  for (const auto& l : left) errors.push_back("still present: " + l);
  if (errors.empty()) {
    fs::remove_all(StateDir(lab), ec);
    if (ec) errors.push_back("remove " + StateDir(lab) + ": " + ec.message());
  }
  for (const auto& e : errors) std::fprintf(stderr, "weftctl lab down: %s\n", e.c_str());
  if (!errors.empty()) return kExitEnv;
  if (!quiet) std::printf("lab %s: down%s\n", lab.c_str(), have_state ? "" : " (no state file; removed by name)");
  return kExitOk;
}

// ---------------------------------------------------------------- up

struct UpOptions {
  std::string lab = "weft";
  int nodes = 2;
  std::string file;
  std::string agent_bin;
  std::string echo_bin;
  std::string controller_bin;
  std::vector<std::string> agent_args;
  int timeout_s = 60;
};

class UpRun {
 public:
  explicit UpRun(const UpOptions& o) : o_(o) {}

  int Run() {
    if (!ValidLabName(o_.lab))
      return Fail(kExitBadInput, "--name " + o_.lab + ": must match [a-z][a-z0-9]{0,15} (no '-')");
    if (o_.nodes < 1 || o_.nodes > 16) return Fail(kExitBadInput, "--nodes " + std::to_string(o_.nodes) + ": must be 1..16");
    auto spec = LoadSpec(o_.file);
    if (!spec.ok()) return Fail(kExitBadInput, spec.status().message());
    spec_ = std::move(*spec);
    if (geteuid() != 0) return Fail(kExitEnv, "lab up needs root (netns, cgroups, BPF)");
    std::error_code ec;
    if (fs::exists(StateDir(o_.lab), ec) || !LabNetns(o_.lab).empty())
      return Fail(kExitEnv, "lab " + o_.lab + " already exists; run `weftctl lab down --name " + o_.lab + "` first");
    auto agent = FindBinary(o_.agent_bin, "WEFT_AGENT_BIN", "../agent/weft-agent", "weft-agent");
    if (!agent.ok()) return Fail(kExitEnv, agent.status().message());
    auto echo = FindBinary(o_.echo_bin, "WEFT_ECHO_BIN", "../echo/weft-echo", "weft-echo");
    if (!echo.ok()) return Fail(kExitEnv, echo.status().message());
    auto controller =
        FindBinary(o_.controller_bin, "WEFT_CONTROLLER_BIN", "../controller/weft-controller", "weft-controller");
    if (!controller.ok()) return Fail(kExitEnv, controller.status().message());
    auto text = ReadFile(o_.file);
    if (!text.ok()) return Fail(kExitBadInput, text.status().message());
    text_ = std::move(*text);
    auto cg2 = sys::Cgroup2Mount();
    if (!cg2.ok()) return Fail(kExitEnv, cg2.status().message());
    if (auto s = sys::EnsureBpffs("/sys/fs/bpf"); !s.ok()) return Fail(kExitEnv, s.message());

    st_.lab = o_.lab;
    st_.phase = "creating";
    st_.state_dir = StateDir(o_.lab);
    st_.spec_file = Absolute(o_.file);
    st_.cgroup_root = CgroupRoot(*cg2, o_.lab);
    st_.pin_root = PinRoot(o_.lab);
    st_.agent_bin = *agent;
    st_.echo_bin = *echo;
    st_.controller_bin = *controller;
    st_.agent_args = o_.agent_args;
    st_.dual_stack = spec_.dual_stack();
    st_.fabric_netns = o_.lab + "-fabric";
    st_.bridge = "br0";
    InstallSignalHandlers();
    auto t0 = Clock::now();
    Status s = Build();
    if (!s.ok() || g_signal) {
      std::fprintf(stderr, "weftctl lab up: %s\nweftctl lab up: cleaning up lab %s\n",
                   g_signal ? "interrupted" : s.message().c_str(), o_.lab.c_str());
      DoDown(o_.lab, true);
      return g_signal ? 128 + g_signal : rejected_ ? kExitBadInput : kExitEnv;
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    PrintSummary(secs);
    return kExitOk;
  }

 private:
  Status Save() {
    if (g_signal) return Status::Error("interrupted");
    return SaveState(st_);
  }

  Status Build() {
    std::error_code ec;
    fs::create_directories(st_.state_dir, ec);
    if (ec) return Status::Error("create " + st_.state_dir + ": " + ec.message());
    WEFT_RETURN_IF_ERROR(Save());

    // Control plane first: the user's file is validated by the controller
    // before any namespace exists.
    WEFT_RETURN_IF_ERROR(control::PlanController(st_));
    WEFT_RETURN_IF_ERROR(Save());
    WEFT_RETURN_IF_ERROR(control::StartController(st_, /*init=*/true));
    WEFT_RETURN_IF_ERROR(Save());
    auto deadline = Clock::now() + std::chrono::seconds(o_.timeout_s);
    WEFT_RETURN_IF_ERROR(control::WaitControllerReady(st_, deadline));
    PlanNodes();
    WEFT_RETURN_IF_ERROR(PlanPods());
    WEFT_RETURN_IF_ERROR(Save());
    auto applied = ApplyThroughController(st_, o_.file, text_, true);
    if (applied.exit_code != 0) {
      rejected_ = applied.exit_code == kExitBadInput;
      return Status::Error(rejected_ ? o_.file + " rejected by the controller:\n" + applied.error : applied.error);
    }
    auto vips = control::ReadVips(st_);
    if (!vips.ok()) return vips.status();
    st_.services = *vips;
    WEFT_RETURN_IF_ERROR(Save());

    WEFT_RETURN_IF_ERROR(sys::MakeCgroup(st_.cgroup_root));
    WEFT_RETURN_IF_ERROR(Save());

    // Fabric.
    WEFT_RETURN_IF_ERROR(net::AddNetns(st_.fabric_netns));
    WEFT_RETURN_IF_ERROR(net::Ip(st_.fabric_netns, {"link", "add", st_.bridge, "type", "bridge"}));
    WEFT_RETURN_IF_ERROR(net::Ip(st_.fabric_netns, {"link", "set", st_.bridge, "up"}));

    // Nodes.
    for (const auto& n : st_.nodes) {
      fs::create_directories(st_.state_dir + "/" + n.name, ec);
      WEFT_RETURN_IF_ERROR(net::AddNetns(n.netns));
      WEFT_RETURN_IF_ERROR(net::Sysctl(n.netns, {"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"}));
      WEFT_RETURN_IF_ERROR(net::AddVeth(n.netns, n.fabric_if, st_.fabric_netns, n.fabric_peer));
      WEFT_RETURN_IF_ERROR(net::Ip(st_.fabric_netns, {"link", "set", n.fabric_peer, "master", st_.bridge, "up"}));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"addr", "add", n.fabric_ip + "/24", "dev", n.fabric_if}));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"addr", "add", n.fabric_ip6 + "/64", "dev", n.fabric_if, "nodad"}));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"link", "set", n.fabric_if, "up"}));
      WEFT_RETURN_IF_ERROR(
          net::Ip(n.netns, {"addr", "add", "10.244." + std::to_string(n.index) + ".1/32", "dev", "lo"}));
      WEFT_RETURN_IF_ERROR(sys::MakeCgroup(n.cgroup));
    }
    for (const auto& n : st_.nodes)
      for (const auto& m : st_.nodes) {
        if (n.index == m.index) continue;
        WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"route", "add", m.pod_cidr, "via", m.fabric_ip, "dev", n.fabric_if}));
        WEFT_RETURN_IF_ERROR(
            net::Ip(n.netns, {"-6", "route", "add", m.pod_cidr6, "via", m.fabric_ip6, "dev", n.fabric_if}));
      }
    fs::create_directories(st_.state_dir + "/pods", ec);
    WEFT_RETURN_IF_ERROR(WriteHostsFiles(st_));

    // Agents (host netns, no test cgroup): they load while we build the pods.
    for (auto& n : st_.nodes) {
      WEFT_RETURN_IF_ERROR(StartAgent(st_, n));
      WEFT_RETURN_IF_ERROR(Save());
    }

    // Pods.
    for (auto& p : st_.pods) {
      const NodeState& n = *st_.FindNode(p.node);
      std::string gw = "10.244." + std::to_string(n.index) + ".1";
      WEFT_RETURN_IF_ERROR(net::AddNetns(p.netns));
      WEFT_RETURN_IF_ERROR(net::AddVeth(n.netns, p.node_veth, p.netns, p.pod_veth));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"addr", "add", "fe80::1/64", "dev", p.node_veth, "nodad"}));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"link", "set", p.node_veth, "up"}));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"route", "add", p.ip + "/32", "dev", p.node_veth}));
      WEFT_RETURN_IF_ERROR(net::Ip(n.netns, {"-6", "route", "add", p.ip6 + "/128", "dev", p.node_veth}));
      WEFT_RETURN_IF_ERROR(net::Ip(p.netns, {"addr", "add", p.ip + "/32", "dev", p.pod_veth}));
      WEFT_RETURN_IF_ERROR(net::Ip(p.netns, {"addr", "add", p.ip6 + "/128", "dev", p.pod_veth, "nodad"}));
      WEFT_RETURN_IF_ERROR(net::Ip(p.netns, {"link", "set", p.pod_veth, "up"}));
      WEFT_RETURN_IF_ERROR(net::Ip(p.netns, {"route", "add", gw, "dev", p.pod_veth, "scope", "link"}));
      WEFT_RETURN_IF_ERROR(net::Ip(p.netns, {"route", "add", "10.244.0.0/16", "via", gw, "dev", p.pod_veth}));
      WEFT_RETURN_IF_ERROR(
          net::Ip(p.netns, {"-6", "route", "add", "fd00:244::/32", "via", "fe80::1", "dev", p.pod_veth}));
      WEFT_RETURN_IF_ERROR(sys::MakeCgroup(p.cgroup));
      std::vector<std::string> argv = {st_.echo_bin,  "--pod", p.name, "--namespace", p.ns,
                                       "--version",   p.labels.count("version") ? p.labels.at("version") : "",
                                       "--service-account", p.service_account};
      for (int port : p.ports) argv.insert(argv.end(), {"--http-port", std::to_string(port)});
      sys::SpawnOptions so;
      so.netns = p.netns;
      so.cgroup = p.cgroup;
      so.log_path = p.log;
      auto pid = sys::Spawn(argv, so);
      if (!pid.ok()) return pid.status().Wrap("start pod " + p.name);
      p.pid = *pid;
      WEFT_RETURN_IF_ERROR(Save());
    }

    // Ready: every agent healthy (its first config from the controller is
    // programmed), every pod listening.
    for (const auto& n : st_.nodes) WEFT_RETURN_IF_ERROR(WaitAgentHealthy(n, deadline));
    for (const auto& p : st_.pods) {
      if (!probe::Alive(p.pid))
        return Status::Error("pod " + p.name + " (weft-echo pid " + std::to_string(p.pid) + ") exited; " + p.log +
                             " ends with:\n" + probe::LogTail(p.log, 10));
      for (int port : p.ports) {
        while (!probe::Listens(p.pid, port)) {
          if (!probe::Alive(p.pid))
            return Status::Error("pod " + p.name + " (weft-echo pid " + std::to_string(p.pid) + ") exited; " + p.log +
                                 " ends with:\n" + probe::LogTail(p.log, 10));
          if (g_signal) return Status::Error("interrupted");
          if (Clock::now() > deadline)
            return Status::Error("pod " + p.name + ": not listening on port " + std::to_string(port) + " in time");
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    }
    // Every backend load-balanced: an agent that received its config before
    // a pod's interface existed withholds that pod's backends until it sees
    // the interface (its placement pass, every second): until then a
    // connection to the service would be refused.
    for (const auto& n : st_.nodes) WEFT_RETURN_IF_ERROR(WaitNoBackendWithheld(n, deadline));
    st_.phase = "ready";
    return Save();
  }

  void PlanNodes() {
    for (int i = 1; i <= o_.nodes; ++i) {
      NodeState n;
      n.name = NodeName(i);
      n.index = i;
      n.netns = o_.lab + "-" + n.name;
      n.cgroup = st_.cgroup_root + "/" + n.name;
      n.pod_cidr = "10.244." + std::to_string(i) + ".0/24";
      n.pod_cidr6 = "fd00:244:" + std::to_string(i) + "::/64";
      n.fabric_ip = "10.243.0." + std::to_string(i);
      n.fabric_ip6 = "fd00:243::" + std::to_string(i);
      n.fabric_if = "fab0";
      n.fabric_peer = "n" + std::to_string(i);
      n.agent.log = st_.state_dir + "/" + n.name + "/agent.log";
      st_.nodes.push_back(n);
    }
  }

  // Pods: round-robin over nodes across all deployments, in file order.
  Status PlanPods() {
    std::vector<int> next_host(o_.nodes + 1, 2);
    int k = 0;
    for (const auto& d : spec_.deployments) {
      for (int r = 0; r < d.replicas; ++r, ++k) {
        NodeState& n = st_.nodes[k % o_.nodes];
        int h = next_host[n.index]++;
        if (h > 254) return Status::Error(o_.file + ": more than 253 pods on " + n.name);
        PodState p;
        p.name = d.name + "-" + std::to_string(r);
        p.deployment = d.name;
        p.replica = r;
        p.ns = d.ns;
        p.node = n.name;
        p.netns = o_.lab + "-" + p.name;
        p.cgroup = n.cgroup + "/" + p.name;
        p.ip = "10.244." + std::to_string(n.index) + "." + std::to_string(h);
        std::ostringstream v6;
        v6 << "fd00:244:" << n.index << "::" << std::hex << h;
        p.ip6 = v6.str();
        p.node_veth = "p" + std::to_string(k);
        p.pod_veth = "eth0";
        p.hosts = "/etc/netns/" + p.netns + "/hosts";
        p.log = st_.state_dir + "/pods/" + p.name + ".log";
        for (const auto& cp : d.ports) {
          p.ports.push_back(cp.port);
          p.port_names.push_back(cp.name);
        }
        p.labels = d.labels;
        p.service_account = d.service_account;
        st_.pods.push_back(p);
      }
    }
    return Status::Ok();
  }

  void PrintSummary(double secs) {
    std::printf("lab %s ready in %.1fs: %zu nodes, %zu pods, %zu services (state %s)\n", st_.lab.c_str(), secs,
                st_.nodes.size(), st_.pods.size(), st_.services.size(), st_.path().c_str());
    std::printf("  controller pid %d: agents %s, weftctl --controller %s\n", st_.controller.pid,
                st_.controller.listen.c_str(), control::AdminAddress(st_).c_str());
    for (const auto& p : st_.pods) std::printf("  pod %-24s %-6s %s\n", p.name.c_str(), p.node.c_str(), p.ip.c_str());
    for (const auto& s : st_.services) {
      std::string v;
      for (const auto& ip : s.vips) v += (v.empty() ? "" : ",") + ip;
      std::printf("  svc %-24s %s\n", (s.name + "." + s.ns).c_str(), v.empty() ? "(headless)" : v.c_str());
    }
  }

  UpOptions o_;
  LabSpec spec_;
  std::string text_;  // the user's file, sent to the controller as written
  bool rejected_ = false;
  LabState st_;
};

// ---------------------------------------------------------------- exec

int DoExec(const std::string& lab, const std::string& pod_name, std::vector<std::string> cmd) {
  if (!cmd.empty() && cmd.front() == "--") cmd.erase(cmd.begin());  // CLI11 2.1 keeps the separator
  if (cmd.empty()) return Fail(kExitBadInput, "exec: no command given (weftctl lab exec POD -- CMD...)");
  auto st = LoadState(lab);
  if (!st.ok()) return Fail(kExitBadInput, "no lab " + lab + ": " + st.status().message());
  const PodState* pod = st->FindPod(pod_name);
  if (!pod) return Fail(kExitBadInput, "lab " + lab + " has no pod " + pod_name);
  if (!net::NetnsExists(pod->netns)) return Fail(kExitEnv, "pod " + pod_name + ": netns " + pod->netns + " is gone");
  // `ip netns exec` binds /etc/netns/<ns>/hosts over /etc/hosts; the cgroup is
  // joined first (while the cgroup2 mount is still visible) so socket-LB applies.
  std::vector<std::string> argv = {"ip", "netns", "exec", pod->netns};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  sys::SpawnOptions so;
  so.cgroup = pod->cgroup;
  so.new_session = false;
  so.inherit_stdin = true;
  InstallSignalHandlers();
  auto pid = sys::Spawn(argv, so);
  if (!pid.ok()) return Fail(kExitEnv, pid.status().message());
  g_child = *pid;
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

// ---------------------------------------------------------------- status

int DoStatus(const std::string& lab, bool json) {
  auto st = LoadState(lab);
  if (!st.ok()) return Fail(kExitBadInput, "no lab " + lab + ": " + st.status().message());
  bool healthy = st->phase == "ready";
  nlohmann::json j = nlohmann::json::parse(StateToJson(*st));
  bool ctl_alive = sys::ProcessMatches(st->controller.pid, "weft-controller");
  std::map<std::string, std::string> sync;  // node -> SYNCED/STALE/NACKED/BEHIND/DISCONNECTED
  std::map<std::string, std::string> nack;
  if (ctl_alive) {
    if (auto ss = control::SyncStatus(*st); ss.ok()) {
      for (const auto& n : ss->nodes()) sync[n.node()] = n.state(), nack[n.node()] = n.nack_reason();
    } else {
      ctl_alive = false;
      j["controller"]["error"] = ss.status().message();
    }
  }
  healthy = healthy && ctl_alive;
  j["controller"]["alive"] = ctl_alive;
  for (size_t i = 0; i < st->nodes.size(); ++i) {
    const auto& n = st->nodes[i];
    bool alive = sys::ProcessMatches(n.agent.pid, "weft-agent");
    int code = alive ? probe::HttpGetStatus(n.agent.metrics, "/healthz", 1000) : 0;
    healthy = healthy && alive && code == 200 && net::NetnsExists(n.netns);
    j["nodes"][i]["agent"]["alive"] = alive;
    j["nodes"][i]["agent"]["healthz"] = code;
    j["nodes"][i]["agent"]["sync"] = sync.count(n.name) ? sync[n.name] : "UNKNOWN";
    j["nodes"][i]["agent"]["nack_reason"] = nack[n.name];
  }
  for (size_t i = 0; i < st->pods.size(); ++i) {
    bool alive = sys::ProcessMatches(st->pods[i].pid, "weft-echo");
    healthy = healthy && alive;
    j["pods"][i]["alive"] = alive;
  }
  j["healthy"] = healthy;
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return healthy ? kExitOk : kExitEnv;
  }
  std::printf("lab %s: %s (phase %s, state %s, pins %s)\n", lab.c_str(), healthy ? "healthy" : "DEGRADED",
              st->phase.c_str(), st->path().c_str(), st->pin_root.c_str());
  std::printf("controller: pid %d %s, listen %s, admin %s, data %s\n", st->controller.pid,
              ctl_alive ? "alive" : "DOWN", st->controller.listen.c_str(), control::AdminAddress(*st).c_str(),
              st->controller.data_dir.c_str());
  std::printf("\n%-8s %-20s %-16s %-8s %-6s %-8s %-13s %s\n", "NODE", "NETNS", "POD-CIDR", "AGENT", "ALIVE", "HEALTHZ",
              "SYNC", "METRICS");
  for (size_t i = 0; i < st->nodes.size(); ++i) {
    const auto& n = st->nodes[i];
    std::printf("%-8s %-20s %-16s %-8d %-6s %-8d %-13s %s\n", n.name.c_str(), n.netns.c_str(), n.pod_cidr.c_str(),
                n.agent.pid, j["nodes"][i]["agent"]["alive"].get<bool>() ? "yes" : "NO",
                j["nodes"][i]["agent"]["healthz"].get<int>(),
                j["nodes"][i]["agent"]["sync"].get<std::string>().c_str(), n.agent.metrics.c_str());
  }
  std::printf("\n%-24s %-10s %-8s %-14s %-8s %-6s %s\n", "POD", "NAMESPACE", "NODE", "IP", "PID", "ALIVE", "SERVING");
  for (size_t i = 0; i < st->pods.size(); ++i) {
    const auto& p = st->pods[i];
    std::printf("%-24s %-10s %-8s %-14s %-8d %-6s %s\n", p.name.c_str(), p.ns.c_str(), p.node.c_str(), p.ip.c_str(),
                p.pid, j["pods"][i]["alive"].get<bool>() ? "yes" : "NO", p.serving ? "yes" : "no");
  }
  std::printf("\n%-24s %-10s %s\n", "SERVICE", "NAMESPACE", "VIPS");
  for (const auto& s : st->services) {
    std::string v;
    for (const auto& ip : s.vips) v += (v.empty() ? "" : ",") + ip;
    std::printf("%-24s %-10s %s\n", s.name.c_str(), s.ns.c_str(), v.empty() ? "(headless)" : v.c_str());
  }
  return healthy ? kExitOk : kExitEnv;
}

// ---------------------------------------------------------------- apply

int DoApply(const std::string& lab, const std::string& file) {
  auto st = LoadState(lab);
  if (!st.ok()) return Fail(kExitBadInput, "no lab " + lab + ": " + st.status().message());
  auto spec = LoadSpec(file);
  if (!spec.ok()) return Fail(kExitBadInput, spec.status().message());
  // Deployments: pods are not created or restarted by apply; a pod whose
  // Deployment is gone or scaled below it leaves the service table.
  std::map<std::string, const DeploymentSpec*> deps;
  for (const auto& d : spec->deployments) deps[d.ns + "/" + d.name] = &d;
  std::map<std::string, int> have;
  for (auto& p : st->pods) {
    auto it = deps.find(p.ns + "/" + p.deployment);
    bool serving = it != deps.end() && p.replica < it->second->replicas;
    if (p.serving && !serving) Warn("pod " + p.name + " leaves the service table (it keeps running until lab down)");
    if (!p.serving && serving) Warn("pod " + p.name + " rejoins the service table");
    p.serving = serving;
    have[p.ns + "/" + p.deployment]++;
    if (it != deps.end() && it->second->labels != p.labels)
      Warn("Deployment " + p.deployment + ": template label changes are ignored by lab apply");
  }
  for (const auto& d : spec->deployments)
    if (d.replicas > have[d.ns + "/" + d.name])
      Warn("Deployment " + d.name + ": new pods are not created by lab apply (run lab down/up)");
  auto text = ReadFile(file);
  if (!text.ok()) return Fail(kExitBadInput, text.status().message());
  auto applied = ApplyThroughController(*st, file, *text, false);
  if (applied.exit_code != 0) {
    std::fprintf(stderr, "%s\n", applied.error.c_str());
    return applied.exit_code;
  }
  // Pods that left the service table: their entries go (one transaction per
  // apply above; these deletes follow it).
  std::vector<std::pair<std::string, std::string>> gone;
  for (const auto& p : st->pods)
    if (!p.serving) {
      PodView v{p.name, p.ns, p.ip, st->dual_stack ? p.ip6 : "", {}, {}, {}, p.node};
      for (const auto& n : WorkloadNames(v)) gone.emplace_back(p.ns, n);
    }
  auto deleted = control::DeleteWorkloads(*st, gone);
  if (deleted.exit_code != 0) return Fail(deleted.exit_code, deleted.error);
  for (const auto& c : deleted.changes) std::printf("  %s\n", c.c_str());
  auto vips = control::ReadVips(*st);
  if (!vips.ok()) return Fail(kExitEnv, vips.status().message());
  st->services = *vips;
  st->dual_stack = spec->dual_stack();
  st->spec_file = Absolute(file);
  if (auto s = WriteHostsFiles(*st); !s.ok()) return Fail(kExitEnv, s.message());
  if (auto s = SaveState(*st); !s.ok()) return Fail(kExitEnv, s.message());
  size_t serving = 0;
  for (const auto& p : st->pods) serving += p.serving;
  std::printf("lab %s: applied %s through the controller: %zu services, %zu pod workload entries, %zu nodes\n",
              lab.c_str(), file.c_str(), st->services.size(), serving, st->nodes.size());
  return kExitOk;
}

// ---------------------------------------------------------------- restart-agent

int DoRestartAgent(const std::string& lab, const std::string& node, bool force_kill, double down_for_s,
                   int timeout_s) {
  auto st = LoadState(lab);
  if (!st.ok()) return Fail(kExitBadInput, "no lab " + lab + ": " + st.status().message());
  NodeState* n = st->FindNode(node);
  if (!n) return Fail(kExitBadInput, "lab " + lab + " has no node " + node);
  if (sys::ProcessMatches(n->agent.pid, "weft-agent")) {
    if (!force_kill)
      return Fail(kExitBadInput, "weft-agent of " + node + " (pid " + std::to_string(n->agent.pid) +
                                     ") is running; pass --kill to SIGKILL it first");
    kill(n->agent.pid, SIGKILL);
    auto until = Clock::now() + std::chrono::seconds(5);
    while (probe::Alive(n->agent.pid) && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::printf("lab %s: weft-agent of %s (pid %d) killed with SIGKILL\n", lab.c_str(), node.c_str(), n->agent.pid);
    std::fflush(stdout);
  }
  InstallSignalHandlers();
  if (down_for_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(down_for_s));
  if (auto s = StartAgent(*st, *n); !s.ok()) return Fail(kExitEnv, s.message());
  if (auto s = SaveState(*st); !s.ok()) return Fail(kExitEnv, s.message());
  auto s = WaitAgentHealthy(*n, Clock::now() + std::chrono::seconds(timeout_s));
  if (!s.ok()) return Fail(kExitEnv, s.message());
  std::printf("lab %s: weft-agent of %s restarted (pid %d, metrics %s)\n", lab.c_str(), node.c_str(), n->agent.pid,
              n->agent.metrics.c_str());
  return kExitOk;
}

// ---------------------------------------------------------------- restart-controller

int DoRestartController(const std::string& lab, bool force_kill, double down_for_s, int timeout_s) {
  auto st = LoadState(lab);
  if (!st.ok()) return Fail(kExitBadInput, "no lab " + lab + ": " + st.status().message());
  pid_t old = st->controller.pid;
  if (sys::ProcessMatches(old, "weft-controller")) {
    if (!force_kill)
      return Fail(kExitBadInput, "weft-controller (pid " + std::to_string(old) +
                                     ") is running; pass --kill to SIGKILL it first");
    kill(old, SIGKILL);
    auto until = Clock::now() + std::chrono::seconds(5);
    while (probe::Alive(old) && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::printf("lab %s: weft-controller (pid %d) killed with SIGKILL\n", lab.c_str(), old);
    std::fflush(stdout);
  }
  InstallSignalHandlers();
  if (down_for_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(down_for_s));
  // Same data dir, socket and port: the agents reconnect to the address they were given.
  if (auto s = control::StartController(*st, /*init=*/false); !s.ok()) return Fail(kExitEnv, s.message());
  if (auto s = SaveState(*st); !s.ok()) return Fail(kExitEnv, s.message());
  auto s = control::WaitControllerReady(*st, Clock::now() + std::chrono::seconds(timeout_s));
  if (!s.ok()) return Fail(kExitEnv, s.message());
  std::printf("lab %s: weft-controller restarted (pid %d, listen %s, data %s)\n", lab.c_str(), st->controller.pid,
              st->controller.listen.c_str(), st->controller.data_dir.c_str());
  return kExitOk;
}

}  // namespace

void Register(CLI::App& root, int* exit_code) {
  // weftctl bpf/flows/trace learn a lab's pin root, nodes, pods and services from here.
  RegisterHints();
  CLI::App* lab = root.add_subcommand("lab", "a Weft cluster of network namespaces on this machine");
  lab->require_subcommand(1);
  auto name_opt = [](CLI::App* c, std::string* name) {
    c->add_option("--name", *name, "lab name: [a-z][a-z0-9]{0,15}")->default_val("weft");
  };

  auto up = std::make_shared<UpOptions>();
  CLI::App* c_up = lab->add_subcommand("up", "build the lab: fabric, nodes, agents, pods");
  name_opt(c_up, &up->lab);
  c_up->add_option("--nodes", up->nodes, "number of nodes")->default_val(2);
  c_up->add_option("-f,--file", up->file, "Kubernetes/Istio YAML (Deployments, Services, WorkloadEntries)")->required();
  c_up->add_option("--agent-bin", up->agent_bin, "weft-agent binary (default: $WEFT_AGENT_BIN or next to weftctl)");
  c_up->add_option("--echo-bin", up->echo_bin, "weft-echo binary (default: $WEFT_ECHO_BIN or next to weftctl)");
  c_up->add_option("--controller-bin", up->controller_bin,
                   "weft-controller binary (default: $WEFT_CONTROLLER_BIN or next to weftctl)");
  c_up->add_option("--agent-arg", up->agent_args,
                   "extra weft-agent argument, repeatable (e.g. --agent-arg=--max-services=8)");
  c_up->add_option("--timeout", up->timeout_s, "seconds to wait for the controller, agents and pods")->default_val(60);
  c_up->callback([up, exit_code] { *exit_code = UpRun(*up).Run(); });

  auto down_name = std::make_shared<std::string>();
  CLI::App* c_down = lab->add_subcommand("down", "remove everything of the lab (idempotent)");
  name_opt(c_down, down_name.get());
  c_down->callback([down_name, exit_code] {
    if (!ValidLabName(*down_name)) {
      *exit_code = Fail(kExitBadInput, "--name " + *down_name + ": must match [a-z][a-z0-9]{0,15}");
      return;
    }
    if (geteuid() != 0) {
      *exit_code = Fail(kExitEnv, "lab down needs root");
      return;
    }
    // Finish the teardown even if interrupted.
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    *exit_code = DoDown(*down_name, false);
  });

  struct ExecArgs {
    std::string lab, pod;
    std::vector<std::string> cmd;
  };
  auto ex = std::make_shared<ExecArgs>();
  CLI::App* c_exec = lab->add_subcommand("exec", "run a command in a pod (its netns, cgroup and /etc/hosts)");
  name_opt(c_exec, &ex->lab);
  c_exec->add_option("pod", ex->pod, "pod name")->required();
  c_exec->add_option("cmd", ex->cmd, "command and arguments (after --)")->required();
  c_exec->positionals_at_end();
  c_exec->callback([ex, exit_code] { *exit_code = DoExec(ex->lab, ex->pod, ex->cmd); });

  struct StatusArgs {
    std::string lab;
    bool json = false;
  };
  auto sa = std::make_shared<StatusArgs>();
  CLI::App* c_status = lab->add_subcommand("status", "nodes, agents, pods, services; exit 2 if degraded");
  name_opt(c_status, &sa->lab);
  c_status->add_flag("--json", sa->json, "print the state with live fields as JSON");
  c_status->callback([sa, exit_code] { *exit_code = DoStatus(sa->lab, sa->json); });

  struct ApplyArgs {
    std::string lab, file;
  };
  auto ap = std::make_shared<ApplyArgs>();
  CLI::App* c_apply = lab->add_subcommand(
      "apply", "apply a changed file through the lab's controller (+ pods' WorkloadEntries; Deployment rules in README)");
  name_opt(c_apply, &ap->lab);
  c_apply->add_option("-f,--file", ap->file, "Kubernetes/Istio YAML")->required();
  c_apply->callback([ap, exit_code] { *exit_code = DoApply(ap->lab, ap->file); });

  struct RestartArgs {
    std::string lab, node;
    bool kill = false;
    int timeout_s = 30;
    double down_for_s = 0;
  };
  auto ra = std::make_shared<RestartArgs>();
  CLI::App* c_restart =
      lab->add_subcommand("restart-agent", "start a node's weft-agent again (as its DaemonSet would)");
  name_opt(c_restart, &ra->lab);
  c_restart->add_option("node", ra->node, "node name, e.g. node1")->required();
  c_restart->add_flag("--kill", ra->kill, "SIGKILL the running agent first");
  c_restart->add_option("--down-for", ra->down_for_s, "seconds to stay down before starting it again")
      ->check(CLI::Range(0.0, 300.0));
  c_restart->add_option("--timeout", ra->timeout_s, "seconds to wait for /healthz")->default_val(30);
  c_restart->callback([ra, exit_code] {
    *exit_code = DoRestartAgent(ra->lab, ra->node, ra->kill, ra->down_for_s, ra->timeout_s);
  });

  auto rc = std::make_shared<RestartArgs>();
  CLI::App* c_rctl = lab->add_subcommand(
      "restart-controller", "start the lab's weft-controller again on the same data dir, socket and port");
  name_opt(c_rctl, &rc->lab);
  c_rctl->add_flag("--kill", rc->kill, "SIGKILL the running controller first");
  c_rctl->add_option("--down-for", rc->down_for_s, "seconds to stay down before starting it again")
      ->check(CLI::Range(0.0, 300.0));
  c_rctl->add_option("--timeout", rc->timeout_s, "seconds to wait for the Admin API")->default_val(30);
  c_rctl->callback([rc, exit_code] { *exit_code = DoRestartController(rc->lab, rc->kill, rc->down_for_s, rc->timeout_s); });
}

}  // namespace weft::cli::lab
