// Helpers for the lab tests: run weftctl, own a lab for the test's lifetime
// (down on every path, Ctrl-C included), and check that nothing is left.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace weft::labtest {

struct CmdResult {
  int rc = -1;
  std::string out;  // stdout + stderr
};

CmdResult Run(const std::vector<std::string>& argv);
CmdResult Weftctl(const std::vector<std::string>& args);
std::string AgentBin();  // next to weftctl: <build>/agent/weft-agent

// "" if the machine can run labs, else why not.
std::string MissingPrerequisite();
bool InCi();

// Last line of `out` that parses as a JSON object (null if none).
nlohmann::json LastJson(const std::string& out);
bool Alive(pid_t pid);  // zombies are dead
std::set<std::string> HostVethNames();
// bpf_link ids attached to the cgroup at `path`.
std::set<long> CgroupLinkIds(const std::string& path);

// A lab with a unique name; `down` in the destructor and on SIGINT/SIGTERM.
class Lab {
 public:
  Lab();
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;
  const std::string& name() const { return name_; }
  CmdResult Up(const std::string& file, int nodes = 2, const std::vector<std::string>& extra = {});
  CmdResult Down();
  CmdResult Apply(const std::string& file);  // `lab apply`
  // weftctl ARGS --controller <this lab's admin socket>.
  CmdResult Ctl(const std::vector<std::string>& args);
  std::string ControllerAddress() const;
  // `weftctl status -o json` (null if it failed).
  nlohmann::json SyncStatus();
  // Bounded wait until `nodes` nodes report `state` (SYNCED, NACKED, ...); the last status.
  nlohmann::json WaitNodes(const std::string& state, size_t nodes, int timeout_s);
  nlohmann::json Status();  // `lab status --json`
  CmdResult Exec(const std::string& pod, const std::vector<std::string>& cmd);
  // weft-loadgen in the pod; returns its JSON summary (null on parse failure).
  nlohmann::json Load(const std::string& pod, const std::vector<std::string>& args, int* rc = nullptr);

 private:
  std::string name_;
};

std::string Slurp(const std::string& path);  // a file's contents ("" if unreadable)

// weft-loadgen ARGS inside POD, in the background; its output goes to the
// lab's state dir (which `down` removes on every path). Stopped if still
// running when destroyed.
class BackgroundLoad {
 public:
  BackgroundLoad(Lab& lab, const std::string& pod, const std::vector<std::string>& args);
  ~BackgroundLoad();
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;
  bool started() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  // Bounded wait for it to finish: its summary JSON, or null if it did not
  // finish in time or printed none. *exited_ok: it exited 0.
  nlohmann::json Wait(int timeout_s, bool* exited_ok = nullptr);

 private:
  pid_t pid_ = -1;
  std::string out_, error_;
};

// Asserts that nothing of lab `name` exists any more; `state` is its
// `status --json` from before `down`, `veths_before` the host veths before `up`.
void ExpectNothingLeft(const std::string& name, const nlohmann::json& state,
                       const std::set<std::string>& veths_before);

}  // namespace weft::labtest

// Skip without root/BPF, but fail under CI=true (a skipped test reads as a pass).
#define WEFT_REQUIRE_LAB_ENV()                                          \
  do {                                                                  \
    std::string _why = ::weft::labtest::MissingPrerequisite();          \
    if (!_why.empty()) {                                                \
      if (::weft::labtest::InCi()) FAIL() << _why << " (CI=true)";      \
      GTEST_SKIP() << _why;                                             \
    }                                                                   \
  } while (0)
