// Small, checked wrappers over the Linux facilities the agent, the lab and the
// tests share: cgroup v2, bpffs, network namespaces and child processes.
// Every failure names the step and the object.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::sys {

// Mount point of the cgroup2 hierarchy, read from /proc/self/mounts (never
// hard-coded: on this machine it is /sys/fs/cgroup/unified).
Result<std::string> Cgroup2Mount();

// Mounts bpffs at `path` unless a bpf filesystem is already mounted there.
Status EnsureBpffs(const std::string& path = "/sys/fs/bpf");

// Creates a cgroup directory (and parents under the cgroup2 mount).
Status MakeCgroup(const std::string& path);
// Kills every process in the cgroup subtree (cgroup.kill, falling back to
// SIGKILL per pid), waits for it to empty, then removes it bottom-up.
// A missing cgroup is not an error.
Status RemoveCgroup(const std::string& path);
// Pids currently in the cgroup (not descendants).
Result<std::vector<pid_t>> CgroupProcs(const std::string& path);

// Private state on disk (data files are 0600, their directories 0700):
// creates `path` and any missing parents with mode 0700 and sets `path`
// itself to 0700 if it already existed (parents that existed are left as
// they are).
Status MakePrivateDir(const std::string& path);
// Writes `text` to `path` atomically: `path`.tmp created with `mode` (never
// wider, whatever the umask), written, fsync'ed, renamed over `path`. A
// reader sees the old file or the new one, never a part. The directory must
// exist.
Status WriteFileAtomic(const std::string& path, const std::string& text, mode_t mode = 0600);
// Reads a whole file of at most `max_bytes` (ENOENT is reported as such in err()).
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

// Runs argv (no shell), waits, captures stdout+stderr into *output if given.
// Returns the exit code (or 128+signal).
Result<int> RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr);
// Like RunCommand but a non-zero exit is an error that quotes the command and its output.
Status Run(const std::vector<std::string>& argv);

struct SpawnOptions {
  std::string netns;        // name under /run/netns, or "" to stay in ours
  std::string cgroup;       // absolute cgroup2 path to join before exec, or ""
  std::string log_path;     // stdout+stderr appended here, or "" to inherit
  bool new_session = true;  // setsid(): survives our exit, no controlling tty
  bool inherit_stdin = false;  // false: stdin is /dev/null
};
// Starts argv as a child: it joins the cgroup (writing its own pid to
// cgroup.procs while it still sees the cgroup2 mount), enters the network
// namespace, then execs. Returns its pid; the caller owns it.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& opts);

// True if `pid` is alive and its /proc/pid/cmdline argv[0] ends with `exe_suffix`
// (guards against killing a recycled pid).
bool ProcessMatches(pid_t pid, const std::string& exe_suffix);

// Path of the running executable's directory (to find sibling binaries).
std::string SelfDir();

// Runs the calling thread in another network namespace for the object's
// lifetime (setns(CLONE_NEWNET) changes only the calling thread) and returns
// it to the namespace it came from on destruction. Sockets opened inside stay
// in that namespace. `path`: a netns file (/run/netns/NAME, /proc/PID/ns/net);
// "" = stay where we are (a no-op guard).
class ScopedNetns {
 public:
  static Result<ScopedNetns> Enter(const std::string& path);
  ScopedNetns(ScopedNetns&& o) noexcept : orig_fd_(o.orig_fd_) { o.orig_fd_ = -1; }
  ScopedNetns& operator=(ScopedNetns&&) = delete;
  ScopedNetns(const ScopedNetns&) = delete;
  ~ScopedNetns();

 private:
  explicit ScopedNetns(int orig_fd) : orig_fd_(orig_fd) {}
  int orig_fd_ = -1;  // our original namespace; -1: nothing to restore
};

}  // namespace weft::sys
