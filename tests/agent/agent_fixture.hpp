// The agent end-to-end tests' shared fixture (label `kernel`, RUN_SERIAL):
// a test cgroup under the cgroup2 mount and a pin root
// /sys/fs/bpf/weft-atest-<pid>-<rand>, both removed on every path (TearDown,
// and a signal handler for Ctrl-C). The maps are read back through their pins
// with libbpf, independently of the agent's own code. Included by one test
// source per executable (everything is in an anonymous namespace).
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/ip.hpp"
#include "weft/sys.hpp"
#include "tests/support/test_util.hpp"
#include "weft/unique_fd.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace weft {
namespace {

using testing::InCi;
using testing::RandomHex;
using testing::ReadFile;

const char* const kPrograms[] = {"weft_connect4",  "weft_connect6",  "weft_sendmsg4",     "weft_sendmsg6",
                                 "weft_recvmsg4",  "weft_recvmsg6",  "weft_getpeername4", "weft_getpeername6"};
const bpf_attach_type kAttachTypes[] = {BPF_CGROUP_INET4_CONNECT,  BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
                                        BPF_CGROUP_UDP6_SENDMSG,   BPF_CGROUP_UDP4_RECVMSG,  BPF_CGROUP_UDP6_RECVMSG,
                                        BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME};
const char* const kMaps[] = {WEFT_MAP_SERVICES,      WEFT_MAP_SLOTS,     WEFT_MAP_BACKENDS, WEFT_MAP_SVC_STATS,
                             WEFT_MAP_BACKEND_STATS, WEFT_MAP_LB_STATS,  WEFT_MAP_SOCK_REV};
constexpr const char* kNode = "n1";

std::string MissingPrerequisite() {
  if (geteuid() != 0) return "not root";
  if (!fs::exists(WEFT_AGENT_BIN)) return std::string("no agent binary at ") + WEFT_AGENT_BIN;
  if (!sys::Cgroup2Mount().ok()) return "no cgroup2 mount";
  if (auto st = sys::EnsureBpffs(); !st.ok()) return st.message();
  UniqueFd probe(bpf_map_create(BPF_MAP_TYPE_ARRAY, "weft_probe", 4, 4, 1, nullptr));
  if (!probe) return std::string("bpf(BPF_MAP_CREATE): ") + std::strerror(errno);
  return "";
}

// ---- async-signal-safe emergency cleanup (Ctrl-C during a test) ----
struct Emergency {
  volatile pid_t agent = -1;
  char cgroup[512] = {};
  char pins[40][512] = {};  // links, maps, then dirs deepest first
  int npins = 0;
};
Emergency g_emergency;

void EmergencyCleanup(int sig) {
  if (g_emergency.agent > 0) {
    kill(g_emergency.agent, SIGKILL);
    waitpid(g_emergency.agent, nullptr, 0);
  }
  // Unlinking a link pin drops its last reference (the agent is dead): the
  // program detaches.
  for (int i = 0; i < g_emergency.npins; ++i) {
    if (unlink(g_emergency.pins[i]) != 0) rmdir(g_emergency.pins[i]);
  }
  if (g_emergency.cgroup[0]) rmdir(g_emergency.cgroup);
  signal(sig, SIG_DFL);
  raise(sig);
}

// Replaces the file the way editors do: write a temp file, rename it over.
void WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0) << std::strerror(errno);
}

struct HttpReply {
  int code = 0;
  std::string body;
};

HttpReply HttpRaw(uint16_t port, const std::string& req) {
  HttpReply r;
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return r;
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return r;
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd.get(), buf, sizeof(buf), 0)) > 0) resp.append(buf, n);
  if (resp.rfind("HTTP/1.1 ", 0) != 0) return r;
  r.code = std::atoi(resp.c_str() + 9);
  auto body = resp.find("\r\n\r\n");
  if (body != std::string::npos) r.body = resp.substr(body + 4);
  return r;
}

HttpReply HttpGet(uint16_t port, const std::string& path) {
  return HttpRaw(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
}

// Value of a sample line "name{labels} value" (or "name value"); -1 if absent.
double MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::atof(line.c_str() + series.size() + 1);
  }
  return -1;
}

uint16_t FreePort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

uint32_t IdOfPinned(const std::string& pin, bool link) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return 0;
  if (link) {
    bpf_link_info info{};
    __u32 len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 ? info.id : 0;
  }
  bpf_map_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 ? info.id : 0;
}

// "vip:port" of every entry in the pinned weft_services map.
std::set<std::string> PinnedServices(const std::string& pin) {
  std::set<std::string> out;
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return out;
  weft_svc_key key{}, next{};
  bool first = true;
  while (bpf_map_get_next_key(fd.get(), first ? nullptr : &key, &next) == 0) {
    weft_svc_val val{};
    if (bpf_map_lookup_elem(fd.get(), &next, &val) == 0)
      out.insert(IpAddr::FromBytes(next.addr).ToString() + ":" + std::to_string(ntohs(next.port)));
    key = next;
    first = false;
  }
  return out;
}

size_t CountEntries(const std::string& pin, size_t key_size) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return 0;
  std::vector<uint8_t> key(key_size), next(key_size);
  size_t n = 0;
  bool first = true;
  while (bpf_map_get_next_key(fd.get(), first ? nullptr : key.data(), next.data()) == 0) {
    ++n;
    key = next;
    first = false;
  }
  return n;
}

// Programs attached to the cgroup, over all the attach types the agent uses.
size_t AttachedPrograms(const std::string& cgroup) {
  UniqueFd fd(open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  size_t total = 0;
  for (auto type : kAttachTypes) {
    __u32 ids[64];
    __u32 cnt = 64;
    __u32 flags = 0;
    if (bpf_prog_query(fd.get(), type, 0, &flags, ids, &cnt) == 0) total += cnt;
  }
  return total;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = MissingPrerequisite();
    if (!why.empty()) {
      if (InCi()) FAIL() << "CI=true and the agent tests cannot run: " << why;
      GTEST_SKIP() << "agent test skipped: " << why;
    }
    std::string suffix = std::to_string(getpid()) + "-" + RandomHex();
    cgroup_ = *sys::Cgroup2Mount() + "/weft-atest-" + suffix;
    pin_root_ = "/sys/fs/bpf/weft-atest-" + suffix;
    char tmpl[] = "/tmp/weft-atest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    config_ = tmp_ + "/agent.yaml";
    log_ = tmp_ + "/agent.log";
    port_ = FreePort();

    // Register everything for the signal handler before creating it.
    std::snprintf(g_emergency.cgroup, sizeof(g_emergency.cgroup), "%s", cgroup_.c_str());
    std::vector<std::string> pins;
    for (auto* p : kPrograms) pins.push_back(LinkPin(p));
    for (auto* m : kMaps) pins.push_back(MapPin(m));
    pins.push_back(NodeDir() + "/links");
    pins.push_back(NodeDir() + "/maps");
    pins.push_back(NodeDir());
    pins.push_back(pin_root_);
    g_emergency.npins = 0;
    for (const auto& p : pins) std::snprintf(g_emergency.pins[g_emergency.npins++], 512, "%s", p.c_str());
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, EmergencyCleanup);

    ASSERT_TRUE(sys::MakeCgroup(cgroup_).ok());
  }

  void TearDown() override {
    if (cgroup_.empty()) return;  // skipped
    KillAgent(SIGKILL);
    if (HasFailure() && fs::exists(log_)) std::cerr << "---- agent log ----\n" << ReadFile(log_) << "----\n";
    std::string out;
    auto rc = sys::RunCommand(
        {WEFT_AGENT_BIN, "cleanup", "--node", kNode, "--pin-root", pin_root_, "--state-dir", StateDir()}, &out);
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
  // The agent's --state-dir (names.json, applied.json under <node>/): per test.
  std::string StateDir() const { return tmp_ + "/state"; }
  std::string LinkPin(const std::string& prog) const { return NodeDir() + "/links/" + prog; }
  std::string MapPin(const std::string& map) const { return NodeDir() + "/maps/" + map; }

  void WriteConfig(const std::string& text) { WriteFileAtomically(config_, text); }

  // Starts the agent (output appended to log_) and waits for /healthz == 200.
  void StartAgent(bool expect_healthy = true) {
    std::vector<std::string> argv = {WEFT_AGENT_BIN, "run", "--node", kNode, "--cgroup", cgroup_};
    if (source_args_.empty()) {
      argv.insert(argv.end(), {"--config", config_});
    } else {
      argv.insert(argv.end(), source_args_.begin(), source_args_.end());
    }
    argv.insert(argv.end(), {"--pin-root", pin_root_, "--metrics", "127.0.0.1:" + std::to_string(port_),
                             "--state-dir", StateDir()});
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    auto pid = sys::Spawn(argv, {.log_path = log_});
    ASSERT_TRUE(pid.ok()) << pid.status().message();
    agent_ = *pid;
    g_emergency.agent = agent_;
    if (expect_healthy) {
      ASSERT_TRUE(WaitFor([&] { return HttpGet(port_, "/healthz").code == 200; })) << "agent never became healthy";
    }
  }

  // Sends `sig`, waits for the exit; returns the exit status (128+signal if killed).
  int KillAgent(int sig) {
    if (agent_ <= 0) return -1;
    kill(agent_, sig);
    int status = 0;
    waitpid(agent_, &status, 0);
    agent_ = -1;
    g_emergency.agent = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  bool AgentAlive() {
    if (agent_ <= 0) return false;
    return waitpid(agent_, nullptr, WNOHANG) == 0;
  }

  // Polls `cond` for up to 10 s; stops early if the agent died.
  bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (cond()) return true;
      if (agent_ > 0 && !AgentAlive()) {
        agent_ = -1;
        g_emergency.agent = -1;
        ADD_FAILURE() << "agent exited";
        return false;
      }
      std::this_thread::sleep_for(20ms);
    }
    return cond();
  }

  double Metric(const std::string& series) { return MetricValue(HttpGet(port_, "/metrics").body, series); }

  std::string cgroup_, pin_root_, tmp_, config_, log_;
  std::vector<std::string> source_args_;  // empty: --config config_
  std::vector<std::string> extra_args_;   // appended to `run`
  uint16_t port_ = 0;
  pid_t agent_ = -1;
};

}  // namespace
}  // namespace weft
