// `weftctl bpf maps` / `weftctl bpf dump` against the maps of a real
// weft-agent (file mode) on a test cgroup and a per-run pin root
// /sys/fs/bpf/weft-bpfcli-<pid>-<rand>. Label `kernel`, RUN_SERIAL: needs root
// + BPF; skips without them, fails instead under CI=true. Everything (agent,
// pins, cgroup, temp dir) is removed on every path, Ctrl-C included.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/sys.hpp"
#include "tests/support/test_util.hpp"
#include "weft/unique_fd.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace weft {
namespace {

using testing::InCi;
using testing::RandomHex;
using testing::ReadFile;

constexpr const char* kNode = "n1";
const char* const kLbMaps[] = {WEFT_MAP_SERVICES,      WEFT_MAP_SLOTS,    WEFT_MAP_BACKENDS, WEFT_MAP_SVC_STATS,
                               WEFT_MAP_BACKEND_STATS, WEFT_MAP_LB_STATS, WEFT_MAP_SOCK_REV};
const char* const kPrograms[] = {"weft_connect4", "weft_connect6", "weft_sendmsg4",     "weft_sendmsg6",
                                 "weft_recvmsg4", "weft_recvmsg6", "weft_getpeername4", "weft_getpeername6"};
constexpr int kCapacity = 64;  // --max-services/--max-backends: small arrays, quick walks

// Two services, three WorkloadEntries (echo has two).
const char* const kConfig = R"(apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  clusterIP: 10.96.1.1
  selector:
    app: echo
  ports:
  - port: 7
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.1.2
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: echo-1
spec:
  address: 10.1.0.1
  labels:
    app: echo
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: echo-2
spec:
  address: 10.1.0.11
  labels:
    app: echo
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: web-1
spec:
  address: 10.1.0.2
  labels:
    app: web
)";

std::string MissingPrerequisite() {
  if (geteuid() != 0) return "not root";
  if (!fs::exists(WEFT_AGENT_BIN)) return std::string("no agent binary at ") + WEFT_AGENT_BIN;
  if (!fs::exists(WEFT_WEFTCTL)) return std::string("no weftctl at ") + WEFT_WEFTCTL;
  if (!sys::Cgroup2Mount().ok()) return "no cgroup2 mount";
  if (auto st = sys::EnsureBpffs(); !st.ok()) return st.message();
  UniqueFd probe(bpf_map_create(BPF_MAP_TYPE_ARRAY, "weft_probe", 4, 4, 1, nullptr));
  if (!probe) return std::string("bpf(BPF_MAP_CREATE): ") + std::strerror(errno);
  return "";
}

// ---- async-signal-safe emergency cleanup (Ctrl-C during a test) ----
struct Emergency {
  volatile pid_t agent = -1;
  volatile pid_t controller = -1;
  char cgroup[512] = {};
  char lab_file[512] = {};
  char lab_dir[512] = {};
  char pins[32][512] = {};  // links, maps, then dirs deepest first
  int npins = 0;
};
Emergency g_emergency;

void EmergencyCleanup(int sig) {
  if (g_emergency.controller > 0) {
    kill(g_emergency.controller, SIGKILL);
    waitpid(g_emergency.controller, nullptr, 0);
  }
  if (g_emergency.agent > 0) {
    kill(g_emergency.agent, SIGKILL);
    waitpid(g_emergency.agent, nullptr, 0);
  }
  for (int i = 0; i < g_emergency.npins; ++i)
    if (unlink(g_emergency.pins[i]) != 0) rmdir(g_emergency.pins[i]);
  if (g_emergency.cgroup[0]) rmdir(g_emergency.cgroup);
  if (g_emergency.lab_file[0]) unlink(g_emergency.lab_file);
  if (g_emergency.lab_dir[0]) rmdir(g_emergency.lab_dir);
  signal(sig, SIG_DFL);
  raise(sig);
}

struct CmdResult {
  int code = -1;
  std::string out, err;
};

// Runs argv with stdout and stderr captured separately (stdout is parsed as JSON).
CmdResult RunCapture(const std::vector<std::string>& argv, const std::string& tmp) {
  CmdResult r;
  const std::string out = tmp + "/cmd.out", err = tmp + "/cmd.err";
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (o < 0 || e < 0 || n < 0) _exit(127);
    dup2(n, 0);
    dup2(o, 1);
    dup2(e, 2);
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
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

size_t CountPinned(const std::string& pin, size_t key_size) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return 0;
  std::vector<uint8_t> key(key_size), next(key_size);
  size_t n = 0;
  bool first = true;
  while (n < 100000 && bpf_map_get_next_key(fd.get(), first ? nullptr : key.data(), next.data()) == 0) {
    ++n;
    key.swap(next);
    first = false;
  }
  return n;
}

class BpfCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = MissingPrerequisite();
    if (!why.empty()) {
      if (InCi()) FAIL() << "CI=true and the bpf cli tests cannot run: " << why;
      GTEST_SKIP() << "bpf cli test skipped: " << why;
    }
    const std::string suffix = std::to_string(getpid()) + "-" + RandomHex();
    cgroup_ = *sys::Cgroup2Mount() + "/weft-bpfcli-" + suffix;
    pin_root_ = "/sys/fs/bpf/weft-bpfcli-" + suffix;
    char tmpl[] = "/tmp/weft-bpfcli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    config_ = tmp_ + "/agent.yaml";
    log_ = tmp_ + "/agent.log";
    state_dir_ = tmp_ + "/state";

    std::snprintf(g_emergency.cgroup, sizeof(g_emergency.cgroup), "%s", cgroup_.c_str());
    std::vector<std::string> pins;
    for (auto* p : kPrograms) pins.push_back(NodeDir() + "/links/" + p);
    for (auto* m : kLbMaps) pins.push_back(MapsDir() + "/" + m);
    for (const auto& p : {NodeDir() + "/links", MapsDir(), NodeDir(), pin_root_}) pins.push_back(p);
    g_emergency.npins = 0;
    for (const auto& p : pins) std::snprintf(g_emergency.pins[g_emergency.npins++], 512, "%s", p.c_str());
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, EmergencyCleanup);

    ASSERT_TRUE(sys::MakeCgroup(cgroup_).ok());
    {
      std::ofstream out(config_);
      out << kConfig;
    }
    const std::string cap = std::to_string(kCapacity);
    auto pid =
        sys::Spawn({WEFT_AGENT_BIN, "run", "--node", kNode, "--cgroup", cgroup_, "--config", config_, "--pin-root",
                    pin_root_, "--metrics", "", "--max-services", cap, "--max-backends", cap, "--max-slots", "4096",
                    "--state-dir", state_dir_},
                   {.log_path = log_});
    ASSERT_TRUE(pid.ok()) << pid.status().message();
    agent_ = *pid;
    g_emergency.agent = agent_;
    // Programmed: both services and all three backends are in the maps.
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (CountPinned(MapsDir() + "/" + WEFT_MAP_SERVICES, sizeof(weft_svc_key)) == 2 &&
          CountPinned(MapsDir() + "/" + WEFT_MAP_BACKENDS, sizeof(uint32_t)) == 3)
        break;
      ASSERT_EQ(waitpid(agent_, nullptr, WNOHANG), 0) << "agent exited:\n" << ReadFile(log_);
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(CountPinned(MapsDir() + "/" + WEFT_MAP_SERVICES, sizeof(weft_svc_key)), 2u) << ReadFile(log_);
  }

  void TearDown() override {
    if (cgroup_.empty()) return;  // skipped
    if (controller_ > 0) {
      kill(controller_, SIGTERM);
      for (int i = 0; i < 100 && waitpid(controller_, nullptr, WNOHANG) == 0; ++i) std::this_thread::sleep_for(20ms);
      if (waitpid(controller_, nullptr, WNOHANG) == 0) {
        kill(controller_, SIGKILL);
        waitpid(controller_, nullptr, 0);
      }
      controller_ = -1;
      g_emergency.controller = -1;
    }
    if (agent_ > 0) {
      kill(agent_, SIGTERM);
      int status = 0;
      waitpid(agent_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "agent SIGTERM exit status " << status;
      agent_ = -1;
      g_emergency.agent = -1;
    }
    if (HasFailure() && fs::exists(log_)) std::cerr << "---- agent log ----\n" << ReadFile(log_) << "----\n";
    if (!lab_dir_.empty()) {
      std::error_code lec;
      fs::remove_all(lab_dir_, lec);
      EXPECT_FALSE(fs::exists(lab_dir_)) << "lab state left: " << lab_dir_;
      if (!created_labs_dir_.empty()) {  // we made it: remove it only if still empty (rmdir)
        fs::remove("/run/weft/lab", lec);
        if (created_labs_dir_ == "/run/weft") fs::remove("/run/weft", lec);
      }
      g_emergency.lab_file[0] = g_emergency.lab_dir[0] = 0;
    }
    std::string out;
    auto rc = sys::RunCommand(
        {WEFT_AGENT_BIN, "cleanup", "--node", kNode, "--pin-root", pin_root_, "--state-dir", state_dir_}, &out);
    EXPECT_TRUE(rc.ok() && *rc == 0) << out;
    std::error_code ec;
    fs::remove_all(pin_root_, ec);  // anything cleanup did not know about
    EXPECT_FALSE(fs::exists(pin_root_)) << "pin root left: " << pin_root_;
    EXPECT_TRUE(sys::RemoveCgroup(cgroup_).ok());
    fs::remove_all(tmp_, ec);
    g_emergency.npins = 0;
    g_emergency.cgroup[0] = 0;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
  }

  std::string NodeDir() const { return pin_root_ + "/" + kNode; }
  std::string MapsDir() const { return NodeDir() + "/maps"; }

  CmdResult Weftctl(std::vector<std::string> args) {
    args.insert(args.begin(), WEFT_WEFTCTL);
    return RunCapture(args, tmp_);
  }
  // `weftctl bpf ARGS --pin-root R --node n1 -o json`, parsed; the single node's section.
  Json JsonOf(std::vector<std::string> args) {
    args.insert(args.begin(), "bpf");
    for (const auto& a : {"--pin-root", pin_root_.c_str(), "--node", kNode, "-o", "json"}) args.push_back(a);
    CmdResult r = Weftctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_array() && j.size() == 1) << r.out;
    if (!j.is_array() || j.size() != 1) return Json::object();
    EXPECT_EQ(j[0]["node"], kNode);
    return j[0];
  }

  std::string cgroup_, pin_root_, tmp_, config_, log_, state_dir_;
  pid_t agent_ = -1;
  pid_t controller_ = -1;
  std::string lab_dir_, created_labs_dir_;
};

TEST_F(BpfCliTest, MapsListsTheEightLbMapsWithEntryCounts) {
  Json node = JsonOf({"maps"});
  std::map<std::string, Json> by_name;
  for (const auto& m : node["maps"]) by_name[m["name"].get<std::string>()] = m;
  for (auto* name : kLbMaps) {
    ASSERT_TRUE(by_name.count(name)) << name << " missing from " << node.dump(2);
    const Json& m = by_name[name];
    EXPECT_GT(m["id"].get<uint32_t>(), 0u) << name;
    EXPECT_EQ(m["path"], MapsDir() + "/" + name);
    EXPECT_TRUE(m["btf"].get<bool>()) << name << ": maps of sock_lb are BTF-defined";
  }
  EXPECT_EQ(by_name[WEFT_MAP_SERVICES]["entries"], 2);
  EXPECT_EQ(by_name[WEFT_MAP_SERVICES]["type"], "hash");
  EXPECT_EQ(by_name[WEFT_MAP_SERVICES]["key_size"], sizeof(weft_svc_key));
  EXPECT_EQ(by_name[WEFT_MAP_SERVICES]["value_size"], sizeof(weft_svc_val));
  EXPECT_EQ(by_name[WEFT_MAP_SERVICES]["max_entries"], kCapacity);
  EXPECT_EQ(by_name[WEFT_MAP_BACKENDS]["entries"], 3);
  EXPECT_EQ(by_name[WEFT_MAP_BACKENDS]["max_entries"], kCapacity);
  EXPECT_EQ(by_name[WEFT_MAP_SOCK_REV]["entries"], 0);
  EXPECT_EQ(by_name[WEFT_MAP_SOCK_REV]["type"], "lru_hash");
  // Per-CPU arrays: every index is a key.
  EXPECT_EQ(by_name[WEFT_MAP_SVC_STATS]["type"], "percpu_array");
  EXPECT_TRUE(by_name[WEFT_MAP_SVC_STATS]["percpu"].get<bool>());
  EXPECT_EQ(by_name[WEFT_MAP_SVC_STATS]["entries"], by_name[WEFT_MAP_SVC_STATS]["max_entries"]);
  EXPECT_EQ(by_name[WEFT_MAP_LB_STATS]["entries"], by_name[WEFT_MAP_LB_STATS]["max_entries"]);
  EXPECT_EQ(by_name[WEFT_MAP_SLOTS]["entries"].get<size_t>(),
            CountPinned(MapsDir() + "/" + WEFT_MAP_SLOTS, sizeof(weft_slot_key)));

  // The table: one section for the node, one line per map.
  CmdResult t = Weftctl({"bpf", "maps", "--pin-root", pin_root_});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("node n1 (" + MapsDir()), std::string::npos) << t.out;
  for (auto* name : kLbMaps) EXPECT_NE(t.out.find(std::string("\n") + name + " "), std::string::npos) << t.out;
}

TEST_F(BpfCliTest, DumpDecodesServicesBackendsSlotsAndStats) {
  // Services, named from the agent's config.
  Json svcs = JsonOf({"dump", WEFT_MAP_SERVICES, "--names-from", config_});
  ASSERT_EQ(svcs["entries"].size(), 2u) << svcs.dump(2);
  std::map<std::string, Json> by_vip;
  for (const auto& s : svcs["entries"]) by_vip[s["vip"].get<std::string>()] = s;
  ASSERT_TRUE(by_vip.count("10.96.1.1") && by_vip.count("10.96.1.2")) << svcs.dump(2);
  EXPECT_EQ(by_vip["10.96.1.1"]["service"], "default/echo");
  EXPECT_EQ(by_vip["10.96.1.1"]["port"], 7);
  EXPECT_EQ(by_vip["10.96.1.1"]["proto"], "tcp");
  EXPECT_EQ(by_vip["10.96.1.1"]["algo"], "random");
  EXPECT_EQ(by_vip["10.96.1.1"]["steer_to_proxy"], false);
  EXPECT_EQ(by_vip["10.96.1.2"]["service"], "default/web");
  EXPECT_EQ(by_vip["10.96.1.2"]["port"], 80);
  for (auto& [vip, s] : by_vip) {
    EXPECT_GT(s["svc_id"].get<uint32_t>(), 0u) << vip;
    EXPECT_GT(s["slot_count"].get<uint32_t>(), 0u) << vip;
  }
  EXPECT_NE(svcs["entries"][0]["svc_id"], svcs["entries"][1]["svc_id"]);

  // Backends: addresses and WorkloadEntry names.
  Json bes = JsonOf({"dump", WEFT_MAP_BACKENDS, "--names-from", config_});
  std::map<std::string, std::string> addr_to_name;
  for (const auto& b : bes["entries"]) addr_to_name[b["address"]] = b["workload"].is_null() ? "" : b["workload"];
  EXPECT_EQ(addr_to_name, (std::map<std::string, std::string>{
                              {"10.1.0.1:7", "echo-1"}, {"10.1.0.11:7", "echo-2"}, {"10.1.0.2:80", "web-1"}}));

  // Slots: one group per service, the generation in force, as many slots as
  // the service entry says; --raw gives every slot.
  Json slots = JsonOf({"dump", WEFT_MAP_SLOTS});
  ASSERT_EQ(slots["entries"].size(), 2u) << slots.dump(2);
  size_t total = 0;
  for (const auto& g : slots["entries"]) {
    EXPECT_EQ(g["state"], "current") << g.dump();
    bool found = false;
    for (auto& [vip, s] : by_vip)
      if (s["svc_id"] == g["svc_id"]) {
        found = true;
        EXPECT_EQ(g["slots"], s["slot_count"]) << vip;
        EXPECT_EQ(g["gen"], s["gen"]) << vip;
        EXPECT_EQ(g["backends"].size(), vip == "10.96.1.1" ? 2u : 1u) << g.dump();
      }
    EXPECT_TRUE(found) << g.dump();
    total += g["slots"].get<size_t>();
  }
  Json raw = JsonOf({"dump", WEFT_MAP_SLOTS, "--raw"});
  EXPECT_EQ(raw["entries"].size(), total);

  // Counters: named, summed over CPUs, zero (no traffic in this test).
  Json lb = JsonOf({"dump", WEFT_MAP_LB_STATS});
  ASSERT_EQ(lb["entries"].size(), static_cast<size_t>(WEFT_STAT_MAX)) << lb.dump(2);
  EXPECT_EQ(lb["entries"][0]["name"], "connect_rewritten");
  EXPECT_EQ(lb["entries"][0]["count"], 0);
  Json ss = JsonOf({"dump", WEFT_MAP_SVC_STATS});
  EXPECT_EQ(ss["entries"].size(), 2u) << "one row per service in weft_services: " << ss.dump(2);
  Json bs = JsonOf({"dump", WEFT_MAP_BACKEND_STATS});
  EXPECT_EQ(bs["entries"].size(), 3u) << bs.dump(2);
  Json rev = JsonOf({"dump", WEFT_MAP_SOCK_REV});
  EXPECT_TRUE(rev["entries"].empty());

  // The table form names the service and the VIP.
  CmdResult t = Weftctl({"bpf", "dump", WEFT_MAP_SERVICES, "--pin-root", pin_root_, "--names-from", config_});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("default/echo"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("10.96.1.2"), std::string::npos) << t.out;
}

// weftctl asks the running agent on its admin socket (<state-dir>/<node>/agent.sock,
// root's) where its pins are and what it runs, instead of reading /proc/PID/cmdline.
TEST_F(BpfCliTest, AgentAnswersOnItsAdminSocket) {
  const std::string sock = state_dir_ + "/" + kNode + "/agent.sock";
  struct stat st {};
  ASSERT_EQ(lstat(sock.c_str(), &st), 0) << ReadFile(log_);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(lstat((state_dir_ + "/" + kNode).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // No --pin-root: the agent under --state-dir says where its pins are.
  CmdResult r = Weftctl({"bpf", "maps", "--state-dir", state_dir_, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << r.out;
  EXPECT_EQ(j[0]["pin_root"], pin_root_);
  const Json& a = j[0]["agent"];
  ASSERT_TRUE(a.is_object()) << r.out;
  EXPECT_EQ(a["node"], kNode);
  EXPECT_EQ(a["pid"], agent_);
  EXPECT_EQ(a["pin_root"], pin_root_);
  EXPECT_EQ(a["state_dir"], state_dir_);
  EXPECT_EQ(a["netns"], "") << "the agent's own";
  EXPECT_EQ(a["mode"], "file");
  EXPECT_EQ(a["source"], config_);
  EXPECT_EQ(a["abi_version"], WEFT_ABI_VERSION);
  EXPECT_EQ(a["names_schema"], 1);
  EXPECT_EQ(a["healthy"], true);
  EXPECT_GE(a["generation"].get<uint64_t>(), 1u);

  CmdResult t = Weftctl({"bpf", "maps", "--state-dir", state_dir_});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("agent: pid " + std::to_string(agent_) + ", weft-agent "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("file " + config_), std::string::npos) << t.out;

  // SIGTERM: the agent takes its socket with it; weftctl then reads the pins alone.
  kill(agent_, SIGTERM);
  int status = 0;
  waitpid(agent_, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  agent_ = -1;
  g_emergency.agent = -1;
  EXPECT_FALSE(fs::exists(sock));
  r = Weftctl({"bpf", "maps", "--state-dir", state_dir_, "--pin-root", pin_root_, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << r.out;
  EXPECT_TRUE(j[0]["agent"].is_null()) << r.out;
  EXPECT_TRUE(r.err.empty()) << "an agent that is not running is no warning: " << r.err;
}

TEST_F(BpfCliTest, UnknownMapOrNodeExitsOneAndSaysWhatExists) {
  CmdResult r = Weftctl({"bpf", "dump", "weft_nope", "--pin-root", pin_root_, "--node", kNode});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("weft_nope"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(WEFT_MAP_SERVICES), std::string::npos) << "should list the maps that exist: " << r.err;
  EXPECT_NE(r.err.find(WEFT_MAP_SLOTS), std::string::npos) << r.err;

  r = Weftctl({"bpf", "maps", "--pin-root", pin_root_, "--node", "nosuchnode"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("nosuchnode"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("n1"), std::string::npos) << "should list the nodes that exist: " << r.err;

  r = Weftctl({"bpf", "maps", "--pin-root", pin_root_ + "-missing"});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(pin_root_ + "-missing"), std::string::npos) << r.err;
}

// A lab's state.json gives the pin root, the nodes and the names. The state is
// written by the test (a lab name of its own, removed on every path) and
// points at this test's pin root; no lab is built.
TEST_F(BpfCliTest, LabStateGivesPinRootNodesAndNames) {
  const std::string lab = "bpfcli" + RandomHex();
  const std::string labs = "/run/weft/lab";
  if (!fs::exists(labs)) created_labs_dir_ = !fs::exists("/run/weft") ? "/run/weft" : labs;
  lab_dir_ = labs + "/" + lab;
  ASSERT_FALSE(fs::exists(lab_dir_));
  std::snprintf(g_emergency.lab_file, sizeof(g_emergency.lab_file), "%s/state.json", lab_dir_.c_str());
  std::snprintf(g_emergency.lab_dir, sizeof(g_emergency.lab_dir), "%s", lab_dir_.c_str());
  fs::create_directories(lab_dir_);
  Json st = {{"version", 1},
             {"lab", lab},
             {"phase", "ready"},
             {"state_dir", lab_dir_},
             {"pin_root", pin_root_},
             {"nodes", {{{"name", kNode}, {"index", 1}}}},
             {"pods", {{{"name", "echo-0"}, {"ip", "10.1.0.1"}}, {{"name", "web-0"}, {"ip", "10.1.0.2"}}}},
             {"services", {{{"name", "echo"}, {"ns", "demo"}, {"vips", {"10.96.1.1"}}}}}};
  std::ofstream(lab_dir_ + "/state.json") << st.dump(2);

  CmdResult r = Weftctl({"bpf", "maps", "--lab", lab, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json maps = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(maps.is_array() && maps.size() == 1) << r.out;
  EXPECT_EQ(maps[0]["node"], kNode);
  EXPECT_EQ(maps[0]["pin_root"], pin_root_);

  r = Weftctl({"bpf", "dump", WEFT_MAP_SERVICES, "--lab", lab, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json svcs = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(svcs.is_array() && svcs.size() == 1) << r.out;
  std::map<std::string, Json> by_vip;
  for (const auto& s : svcs[0]["entries"]) by_vip[s["vip"]] = s["service"];
  EXPECT_EQ(by_vip["10.96.1.1"], "demo/echo");
  EXPECT_TRUE(by_vip["10.96.1.2"].is_null()) << "not in the lab's state: no name";

  r = Weftctl({"bpf", "dump", WEFT_MAP_BACKENDS, "--lab", lab, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json bes = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(bes.is_array() && bes.size() == 1) << r.out;
  std::map<std::string, Json> by_addr;
  for (const auto& b : bes[0]["entries"]) by_addr[b["address"]] = b["workload"];
  EXPECT_EQ(by_addr["10.1.0.1:7"], "echo-0");
  EXPECT_EQ(by_addr["10.1.0.2:80"], "web-0");

  r = Weftctl({"bpf", "maps", "--lab", lab + "x"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(lab + "x"), std::string::npos) << r.err;
}

#ifdef WEFT_CONTROLLER_BIN
// Names from a weft-controller (Admin.Get of Services and WorkloadEntries)
// holding the same objects as the agent's file.
TEST_F(BpfCliTest, DumpNamesFromController) {
  const std::string sock = tmp_ + "/admin.sock";
  UniqueFd port_probe(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(port_probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(port_probe.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  port_probe.reset();
  auto pid = sys::Spawn({WEFT_CONTROLLER_BIN, "--data-dir", tmp_ + "/data", "--init", "--listen", listen,
                         "--admin-socket", sock},
                        {.log_path = tmp_ + "/controller.log"});
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  controller_ = *pid;
  g_emergency.controller = controller_;
  const std::string addr = "unix://" + sock;
  bool applied = false;
  for (auto until = std::chrono::steady_clock::now() + 10s; !applied && std::chrono::steady_clock::now() < until;) {
    applied = Weftctl({"apply", "-f", config_, "--controller", addr}).code == 0;
    if (!applied) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(applied) << ReadFile(tmp_ + "/controller.log");

  Json svcs = JsonOf({"dump", WEFT_MAP_SERVICES, "--controller", addr});
  std::map<std::string, std::string> names;
  for (const auto& s : svcs["entries"]) names[s["vip"]] = s["service"].is_null() ? "" : s["service"];
  EXPECT_EQ(names, (std::map<std::string, std::string>{{"10.96.1.1", "default/echo"}, {"10.96.1.2", "default/web"}}));
  Json bes = JsonOf({"dump", WEFT_MAP_BACKENDS, "--controller", addr});
  std::set<std::string> workloads;
  for (const auto& b : bes["entries"])
    if (b["workload"].is_string()) workloads.insert(b["workload"]);
  EXPECT_EQ(workloads, (std::set<std::string>{"echo-1", "echo-2", "web-1"}));

  // An unreachable controller only costs the names.
  CmdResult r = Weftctl(
      {"bpf", "dump", WEFT_MAP_SERVICES, "--pin-root", pin_root_, "--controller", "unix://" + tmp_ + "/nope.sock"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: names from the controller"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("10.96.1.1"), std::string::npos) << r.out;
}
#endif

// The TC policy maps (bpf/tc_policy.bpf.c), decoded per the ABI structs: the
// maps are created and pinned by the test itself (no BTF), so this runs
// whether or not the agent loads the TC object yet.
class BpfCliTcMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = MissingPrerequisite();
    if (!why.empty()) {
      if (InCi()) FAIL() << "CI=true and the bpf cli tests cannot run: " << why;
      GTEST_SKIP() << "bpf cli test skipped: " << why;
    }
    pin_root_ = "/sys/fs/bpf/weft-bpfcli-" + std::to_string(getpid()) + "-" + RandomHex();
    char tmpl[] = "/tmp/weft-bpfcli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    g_emergency.npins = 0;
    for (const char* m :
         {WEFT_MAP_IDENTITY, WEFT_MAP_POLICY, WEFT_MAP_CT, WEFT_MAP_ENDPOINTS, WEFT_MAP_DROP_STATS, WEFT_MAP_FLOWS})
      std::snprintf(g_emergency.pins[g_emergency.npins++], 512, "%s/%s", MapsDir().c_str(), m);
    for (const auto& d : {MapsDir(), pin_root_ + "/" + kNode, pin_root_})
      std::snprintf(g_emergency.pins[g_emergency.npins++], 512, "%s", d.c_str());
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, EmergencyCleanup);
    fs::create_directories(MapsDir());
  }
  void TearDown() override {
    if (pin_root_.empty()) return;
    std::error_code ec;
    fs::remove_all(pin_root_, ec);  // unpins: the maps go with their last reference
    EXPECT_FALSE(fs::exists(pin_root_)) << "pin root left: " << pin_root_ << ": " << ec.message();
    fs::remove_all(tmp_, ec);
    g_emergency.npins = 0;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
  }
  std::string MapsDir() const { return pin_root_ + "/" + kNode + "/maps"; }

  // Creates and pins a map; the returned fd stays open for the writes.
  UniqueFd Create(bpf_map_type type, const char* name, uint32_t key, uint32_t val, uint32_t max, uint32_t flags = 0) {
    LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
    UniqueFd fd(bpf_map_create(type, name, key, val, max, &o));
    EXPECT_TRUE(fd) << "create " << name << ": " << std::strerror(errno);
    EXPECT_EQ(bpf_obj_pin(fd.get(), (MapsDir() + "/" + name).c_str()), 0) << name << ": " << std::strerror(errno);
    return fd;
  }

  Json Dump(const std::string& map, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {WEFT_WEFTCTL, "bpf",    "dump", map,  "--pin-root",
                                     pin_root_,    "--node", kNode,  "-o", "json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    CmdResult r = RunCapture(argv, tmp_);
    EXPECT_EQ(r.code, 0) << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    if (!j.is_array() || j.size() != 1) {
      ADD_FAILURE() << r.out;
      return Json::array();
    }
    return j[0]["entries"];
  }

  std::string pin_root_, tmp_;
};

void Mapped(const char* v4, uint8_t out[16]) {
  std::memset(out, 0, 16);
  out[10] = out[11] = 0xff;
  inet_pton(AF_INET, v4, out + 12);
}

TEST_F(BpfCliTcMapsTest, DumpDecodesPolicyMaps) {
  const int ncpus = libbpf_num_possible_cpus();
  ASSERT_GT(ncpus, 0);

  UniqueFd ident = Create(BPF_MAP_TYPE_LPM_TRIE, WEFT_MAP_IDENTITY, sizeof(weft_ipcache_key), sizeof(weft_ipcache_val),
                          16, BPF_F_NO_PREALLOC);
  weft_ipcache_key ik{};
  ik.prefixlen = 128;
  Mapped("10.1.0.1", ik.addr);
  weft_ipcache_val iv{256, 0};
  ASSERT_EQ(bpf_map_update_elem(ident.get(), &ik, &iv, BPF_ANY), 0);
  ik.prefixlen = 96 + 16;
  Mapped("10.244.0.0", ik.addr);
  iv.identity = WEFT_IDENTITY_WORLD;
  ASSERT_EQ(bpf_map_update_elem(ident.get(), &ik, &iv, BPF_ANY), 0);

  UniqueFd pol = Create(BPF_MAP_TYPE_HASH, WEFT_MAP_POLICY, sizeof(weft_policy_key), sizeof(weft_policy_val), 16);
  weft_policy_key pk{1, 256, 80, IPPROTO_TCP, WEFT_DIR_INGRESS};
  weft_policy_val pv{WEFT_VERDICT_ALLOW, 0, 0, 7};
  ASSERT_EQ(bpf_map_update_elem(pol.get(), &pk, &pv, BPF_ANY), 0);
  pk = {1, WEFT_IDENTITY_ANY, 0, IPPROTO_TCP, WEFT_DIR_INGRESS};
  pv = {WEFT_VERDICT_DENY, 0, 0, 8};
  ASSERT_EQ(bpf_map_update_elem(pol.get(), &pk, &pv, BPF_ANY), 0);

  UniqueFd eps = Create(BPF_MAP_TYPE_HASH, WEFT_MAP_ENDPOINTS, sizeof(uint32_t), sizeof(weft_endpoint), 16);
  uint32_t ifindex = 42;
  weft_endpoint ep{1, 256, 1, 0, 0};
  ASSERT_EQ(bpf_map_update_elem(eps.get(), &ifindex, &ep, BPF_ANY), 0);

  UniqueFd drops =
      Create(BPF_MAP_TYPE_PERCPU_ARRAY, WEFT_MAP_DROP_STATS, sizeof(uint32_t), sizeof(uint64_t), WEFT_DROP_MAX);
  std::vector<uint64_t> per_cpu(ncpus, 3);
  uint32_t reason = WEFT_DROP_POLICY_DENIED;
  ASSERT_EQ(bpf_map_update_elem(drops.get(), &reason, per_cpu.data(), BPF_ANY), 0);

  // The aggregates: key -> slot 5, counters at weft_flow_ctr[5].
  UniqueFd flows = Create(BPF_MAP_TYPE_HASH, WEFT_MAP_FLOWS, sizeof(weft_flow_key), sizeof(weft_flow_slot), 16);
  UniqueFd flow_ctr =
      Create(BPF_MAP_TYPE_PERCPU_ARRAY, WEFT_MAP_FLOW_COUNTERS, sizeof(uint32_t), sizeof(weft_flow_val), 16);
  weft_flow_key fk{256, 257, 80, IPPROTO_TCP, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DENIED, WEFT_DIR_INGRESS, 0, 8};
  weft_flow_slot fs{5};
  ASSERT_EQ(bpf_map_update_elem(flows.get(), &fk, &fs, BPF_ANY), 0);
  std::vector<weft_flow_val> fv(ncpus, weft_flow_val{1, 2, 100});
  ASSERT_EQ(bpf_map_update_elem(flow_ctr.get(), &fs.slot, fv.data(), BPF_ANY), 0);

  UniqueFd ct = Create(BPF_MAP_TYPE_LRU_HASH, WEFT_MAP_CT, sizeof(weft_ct_key), sizeof(weft_ct_val), 16);
  weft_ct_key ck{};
  Mapped("10.1.0.2", ck.saddr);
  Mapped("10.1.0.1", ck.daddr);
  ck.sport = htons(40000);
  ck.dport = htons(80);
  ck.proto = IPPROTO_TCP;
  weft_ct_val cv{1, 7, WEFT_VERDICT_ALLOW, 0, 0, 256, 5};
  ASSERT_EQ(bpf_map_update_elem(ct.get(), &ck, &cv, BPF_ANY), 0);

  const std::string names = tmp_ + "/names.yaml";
  {
    std::ofstream out(names);
    out << kConfig;
  }
  Json id = Dump(WEFT_MAP_IDENTITY, {"--names-from", names});
  ASSERT_EQ(id.size(), 2u);
  std::map<std::string, Json> by_prefix;
  for (const auto& e : id) by_prefix[e["prefix"]] = e;
  EXPECT_EQ(by_prefix["10.1.0.1/32"]["identity"], 256);
  EXPECT_EQ(by_prefix["10.1.0.1/32"]["workload"], "echo-1");
  EXPECT_EQ(by_prefix["10.244.0.0/16"]["identity"], WEFT_IDENTITY_WORLD);

  Json p = Dump(WEFT_MAP_POLICY);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0]["peer_identity"], 0);  // sorted: the wildcard first
  EXPECT_EQ(p[0]["verdict"], "deny");
  EXPECT_EQ(p[0]["policy_id"], 8);
  EXPECT_EQ(p[1]["peer_identity"], 256);
  EXPECT_EQ(p[1]["port"], 80);
  EXPECT_EQ(p[1]["proto"], "tcp");
  EXPECT_EQ(p[1]["direction"], "ingress");
  EXPECT_EQ(p[1]["verdict"], "allow");
  EXPECT_EQ(p[1]["policy_id"], 7);

  Json e = Dump(WEFT_MAP_ENDPOINTS);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["ifindex"], 42);
  EXPECT_EQ(e[0]["identity"], 256);
  EXPECT_EQ(e[0]["enforce_ingress"], true);
  EXPECT_EQ(e[0]["enforce_egress"], false);

  Json d = Dump(WEFT_MAP_DROP_STATS);
  ASSERT_EQ(d.size(), static_cast<size_t>(WEFT_DROP_MAX));
  EXPECT_EQ(d[WEFT_DROP_POLICY_DENIED]["name"], "policy_denied");
  EXPECT_EQ(d[WEFT_DROP_POLICY_DENIED]["count"], 3 * ncpus);  // summed over CPUs
  EXPECT_EQ(d[WEFT_DROP_MALFORMED]["name"], "malformed");
  EXPECT_EQ(d[WEFT_DROP_MALFORMED]["count"], 0);

  Json f = Dump(WEFT_MAP_FLOWS);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]["reason"], "policy_denied");
  EXPECT_EQ(f[0]["verdict"], "deny");
  EXPECT_EQ(f[0]["slot"], 5);
  EXPECT_EQ(f[0]["connections"], 1 * ncpus);
  EXPECT_EQ(f[0]["packets"], 2 * ncpus);
  EXPECT_EQ(f[0]["bytes"], 100 * ncpus);
  Json fc = Dump(WEFT_MAP_FLOW_COUNTERS);  // only the slot that counted
  ASSERT_EQ(fc.size(), 1u);
  EXPECT_EQ(fc[0]["slot"], 5);
  EXPECT_EQ(fc[0]["bytes"], 100 * ncpus);

  Json c = Dump(WEFT_MAP_CT);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["source"], "10.1.0.2:40000");
  EXPECT_EQ(c[0]["destination"], "10.1.0.1:80");
  EXPECT_EQ(c[0]["verdict"], "allow");
  EXPECT_EQ(c[0]["policy_id"], 7);
  EXPECT_EQ(c[0]["peer_identity"], 256);
  EXPECT_EQ(c[0]["flow_slot"], 5);

  // `bpf maps`: the test's maps carry no BTF, and the LPM trie counts its prefixes.
  CmdResult r = RunCapture({WEFT_WEFTCTL, "bpf", "maps", "--pin-root", pin_root_, "-o", "json"}, tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  Json maps = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(maps.is_array() && maps.size() == 1) << r.out;
  for (const auto& m : maps[0]["maps"]) {
    EXPECT_FALSE(m["btf"].get<bool>()) << m.dump();
    if (m["name"] == WEFT_MAP_IDENTITY) {
      EXPECT_EQ(m["entries"], 2);
      EXPECT_EQ(m["type"], "lpm_trie");
    }
  }
}

}  // namespace
}  // namespace weft
