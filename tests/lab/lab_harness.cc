#include "tests/lab/lab_harness.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "weft/sys.hpp"

namespace fs = std::filesystem;

namespace weft::labtest {

namespace {

// The lab to tear down if the run is interrupted (async-signal-safe storage).
char g_lab_name[64] = {};
std::atomic<int> g_counter{0};

void OnSignal(int sig) {
  if (g_lab_name[0]) {
    pid_t p = fork();
    if (p == 0) {
      execl(WEFT_WEFTCTL, WEFT_WEFTCTL, "lab", "down", "--name", g_lab_name, static_cast<char*>(nullptr));
      _exit(127);
    }
    if (p > 0) waitpid(p, nullptr, 0);
  }
  _exit(128 + sig);
}

}  // namespace

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

BackgroundLoad::BackgroundLoad(Lab& lab, const std::string& pod, const std::vector<std::string>& args) {
  static int n = 0;
  out_ = lab.Status().value("state_dir", std::string("/tmp")) + "/loadgen-" + std::to_string(getpid()) + "-" +
         std::to_string(n++) + ".out";
  std::vector<std::string> argv = {WEFT_WEFTCTL, "lab", "exec", "--name", lab.name(), pod, "--", WEFT_LOADGEN};
  argv.insert(argv.end(), args.begin(), args.end());
  sys::SpawnOptions so;
  so.log_path = out_;
  so.new_session = false;
  auto pid = sys::Spawn(argv, so);
  if (pid.ok())
    pid_ = *pid;
  else
    error_ = pid.status().message();
}

BackgroundLoad::~BackgroundLoad() {
  if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::remove(out_.c_str());
}

nlohmann::json BackgroundLoad::Wait(int timeout_s, bool* exited_ok) {
  int status = 0;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
       pid_ > 0 && std::chrono::steady_clock::now() < until;) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (pid_ != 0) return nlohmann::json();  // still running (or never started): the destructor stops it
  if (exited_ok) *exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return LastJson(Slurp(out_));
}

CmdResult Run(const std::vector<std::string>& argv) {
  CmdResult r;
  auto rc = sys::RunCommand(argv, &r.out);
  r.rc = rc.ok() ? *rc : -1;
  if (!rc.ok()) r.out = rc.status().message();
  return r;
}

CmdResult Weftctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {WEFT_WEFTCTL};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

std::string AgentBin() { return fs::path(WEFT_WEFTCTL).parent_path().parent_path().string() + "/agent/weft-agent"; }

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string MissingPrerequisite() {
  if (geteuid() != 0) return "lab tests need root (netns, cgroups, BPF)";
  if (!sys::Cgroup2Mount().ok()) return "no cgroup2 mount";
  if (auto s = sys::EnsureBpffs("/sys/fs/bpf"); !s.ok()) return "bpffs: " + s.message();
  if (access(AgentBin().c_str(), X_OK) != 0) return "weft-agent not built at " + AgentBin();
  std::string controller = fs::path(AgentBin()).parent_path().parent_path().string() + "/controller/weft-controller";
  if (access(controller.c_str(), X_OK) != 0) return "weft-controller not built at " + controller;
  for (const char* tool : {"ip", "nsenter", "curl", "getent", "bpftool"})
    if (Run({"sh", "-c", std::string("command -v ") + tool}).rc != 0) return std::string("missing tool: ") + tool;
  return "";
}

nlohmann::json LastJson(const std::string& out) {
  std::istringstream in(out);
  std::string line;
  nlohmann::json last;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    try {
      last = nlohmann::json::parse(line);
    } catch (const std::exception&) {
    }
  }
  return last;
}

bool Alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  return !(rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z');
}

std::set<std::string> HostVethNames() {
  std::set<std::string> out;
  std::istringstream in(Run({"ip", "-o", "link", "show", "type", "veth"}).out);
  std::string line;
  while (std::getline(in, line)) {
    // "12: name@peer: <...>"
    auto a = line.find(": ");
    if (a == std::string::npos) continue;
    auto b = line.find_first_of("@:", a + 2);
    out.insert(line.substr(a + 2, b - a - 2));
  }
  return out;
}

std::set<long> CgroupLinkIds(const std::string& path) {
  std::set<long> ids;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ids;
  auto r = Run({"bpftool", "-j", "link", "show"});
  try {
    for (const auto& l : nlohmann::json::parse(r.out))
      if (l.value("cgroup_id", 0UL) == static_cast<unsigned long>(st.st_ino)) ids.insert(l.value("id", 0L));
  } catch (const std::exception&) {
  }
  return ids;
}

Lab::Lab() {
  // [a-z][a-z0-9]{0,15}: "t" + pid + counter.
  name_ = "weftt" + std::to_string(getpid() % 10000000) + "x" + std::to_string(g_counter++ % 100);
  std::snprintf(g_lab_name, sizeof(g_lab_name), "%s", name_.c_str());
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

Lab::~Lab() {
  Down();
  g_lab_name[0] = '\0';
}

CmdResult Lab::Up(const std::string& file, int nodes, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"lab", "up", "--name", name_, "--nodes", std::to_string(nodes), "-f", file};
  args.insert(args.end(), extra.begin(), extra.end());
  return Weftctl(args);
}

std::string Lab::ControllerAddress() const { return "unix:///run/weft/lab/" + name_ + "/controller/admin.sock"; }

CmdResult Lab::Ctl(const std::vector<std::string>& args) {
  std::vector<std::string> a = args;
  a.insert(a.end(), {"--controller", ControllerAddress()});
  return Weftctl(a);
}

nlohmann::json Lab::SyncStatus() {
  auto r = Ctl({"status", "-o", "json"});
  return r.rc == 0 ? LastJson(r.out) : nlohmann::json();
}

nlohmann::json Lab::WaitNodes(const std::string& state, size_t nodes, int timeout_s) {
  nlohmann::json last;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    last = SyncStatus();
    size_t n = 0;
    if (last.contains("nodes"))
      for (const auto& node : last["nodes"]) n += node.value("state", "") == state;
    if (n == nodes || std::chrono::steady_clock::now() > until) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}
CmdResult Lab::Down() { return Weftctl({"lab", "down", "--name", name_}); }
CmdResult Lab::Apply(const std::string& file) { return Weftctl({"lab", "apply", "--name", name_, "-f", file}); }

nlohmann::json Lab::Status() {
  auto r = Weftctl({"lab", "status", "--name", name_, "--json"});
  try {
    return nlohmann::json::parse(r.out.substr(r.out.find('{')));
  } catch (const std::exception&) {
    return {};
  }
}

CmdResult Lab::Exec(const std::string& pod, const std::vector<std::string>& cmd) {
  std::vector<std::string> args = {"lab", "exec", "--name", name_, pod, "--"};
  args.insert(args.end(), cmd.begin(), cmd.end());
  return Weftctl(args);
}

nlohmann::json Lab::Load(const std::string& pod, const std::vector<std::string>& args, int* rc) {
  std::vector<std::string> cmd = {WEFT_LOADGEN};
  cmd.insert(cmd.end(), args.begin(), args.end());
  auto r = Exec(pod, cmd);
  if (rc) *rc = r.rc;
  auto j = LastJson(r.out);
  if (j.is_null()) ADD_FAILURE() << "weft-loadgen printed no JSON (rc " << r.rc << "): " << r.out;
  return j;
}

void ExpectNothingLeft(const std::string& name, const nlohmann::json& state,
                       const std::set<std::string>& veths_before) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec))
    EXPECT_NE(e.path().filename().string().rfind(name + "-", 0), 0u) << "netns left: " << e.path();
  for (const auto& e : fs::directory_iterator("/etc/netns", ec))
    EXPECT_NE(e.path().filename().string().rfind(name + "-", 0), 0u) << "/etc/netns dir left: " << e.path();
  ASSERT_TRUE(state.contains("cgroup_root"));
  EXPECT_FALSE(fs::exists(state["cgroup_root"].get<std::string>(), ec)) << "cgroup left: " << state["cgroup_root"];
  EXPECT_FALSE(fs::exists(state["pin_root"].get<std::string>(), ec)) << "pins left: " << state["pin_root"];
  EXPECT_FALSE(fs::exists(state["state_dir"].get<std::string>(), ec)) << "state dir left";
  std::vector<pid_t> pids;
  for (const auto& n : state["nodes"]) pids.push_back(n["agent"]["pid"].get<pid_t>());
  for (const auto& p : state["pods"]) pids.push_back(p["pid"].get<pid_t>());
  ASSERT_TRUE(state.contains("controller"));
  pids.push_back(state["controller"]["pid"].get<pid_t>());
  EXPECT_FALSE(fs::exists(state["controller"]["admin_socket"].get<std::string>(), ec)) << "controller socket left";
  EXPECT_FALSE(fs::exists(state["controller"]["data_dir"].get<std::string>(), ec)) << "controller data dir left";
  for (pid_t p : pids) EXPECT_FALSE(Alive(p)) << "process of the lab still running: pid " << p;
  // Any process still naming the lab's pin root or state dir (an agent or controller the state missed).
  std::string pin = state["pin_root"].get<std::string>();
  std::string dir = state["state_dir"].get<std::string>();
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string cmd = Slurp(e.path().string() + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    EXPECT_EQ(cmd.find(pin + " "), std::string::npos) << "process left: " << e.path() << " " << cmd;
    EXPECT_EQ(cmd.find(dir + "/"), std::string::npos) << "process left: " << e.path() << " " << cmd;
  }
  for (const auto& v : HostVethNames()) EXPECT_TRUE(veths_before.count(v)) << "veth appeared in the host netns: " << v;
}

}  // namespace weft::labtest

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
