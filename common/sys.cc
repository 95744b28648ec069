#include "weft/sys.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "weft/unique_fd.hpp"

namespace fs = std::filesystem;

namespace weft::sys {

namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

Result<std::string> Cgroup2Mount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type) {
    std::getline(mounts, rest);
    if (type == "cgroup2") return dir;
  }
  return Status::Error("find cgroup2 mount in /proc/self/mounts: none mounted");
}

Status EnsureBpffs(const std::string& path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == kBpfFsMagic) return Status::Ok();
  std::error_code ec;
  fs::create_directories(path, ec);
  if (mount("bpf", path.c_str(), "bpf", 0, "mode=0700") != 0)
    return Status::Errno("mount bpffs at " + path, errno);
  return Status::Ok();
}

Status MakePrivateDir(const std::string& path) {
  if (path.empty()) return Status::Error("create directory: empty path", EINVAL);
  // Create missing components one by one with 0700 (create_directories would
  // use 0777 & ~umask).
  fs::path p(path);
  fs::path cur;
  for (const auto& part : p) {
    cur /= part;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return Status::Errno("create directory " + cur.string(), errno);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Errno("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Error(path + ": exists and is not a directory", ENOTDIR);
  if ((st.st_mode & 07777) != 0700 && ::chmod(path.c_str(), 0700) != 0) return Status::Errno("chmod 0700 " + path, errno);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover of a crash; O_EXCL below refuses anything else there
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return Status::Errno("create " + tmp, errno);
  if (::fchmod(fd.get(), mode) != 0) return Status::Errno("chmod " + tmp, errno);  // the umask may have narrowed it
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::unlink(tmp.c_str());
      return Status::Errno("write " + tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Errno("fsync " + tmp, err);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Errno("rename " + tmp + " to " + path, err);
  }
  return Status::Ok();
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return Status::Errno("open " + path, errno);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Errno("read " + path, errno);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return Status::Error("read " + path + ": larger than " + std::to_string(max_bytes) + " bytes", EFBIG);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status MakeCgroup(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Error("create cgroup " + path + ": " + ec.message(), ec.value());
  return Status::Ok();
}

Result<std::vector<pid_t>> CgroupProcs(const std::string& path) {
  std::ifstream in(path + "/cgroup.procs");
  if (!in) return Status::Error("read " + path + "/cgroup.procs: cannot open");
  std::vector<pid_t> pids;
  pid_t p;
  while (in >> p) pids.push_back(p);
  return pids;
}

namespace {
bool SubtreeEmpty(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return true;
  // cgroup.events "populated 0" covers descendants.
  std::string ev = ReadFile(path + "/cgroup.events");
  return ev.find("populated 0") != std::string::npos;
}

void KillSubtree(const std::string& path) {
  std::error_code ec;
  if (fs::exists(path + "/cgroup.kill", ec)) {
    std::ofstream(path + "/cgroup.kill") << "1";
    return;
  }
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it); it.increment(ec)) {
    if (!it->is_directory()) continue;
    if (auto pids = CgroupProcs(it->path().string()); pids.ok())
      for (pid_t p : *pids) kill(p, SIGKILL);
  }
  if (auto pids = CgroupProcs(path); pids.ok())
    for (pid_t p : *pids) kill(p, SIGKILL);
}
}  // namespace

Status RemoveCgroup(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!SubtreeEmpty(path)) {
    KillSubtree(path);
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Error("remove cgroup " + path + ": processes still running after SIGKILL");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Remove bottom-up: collect directories, deepest first.
  std::vector<std::string> dirs;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it); it.increment(ec))
    if (it->is_directory()) dirs.push_back(it->path().string());
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  dirs.push_back(path);
  for (const auto& d : dirs) {
    if (rmdir(d.c_str()) != 0 && errno != ENOENT) return Status::Errno("remove cgroup " + d, errno);
  }
  return Status::Ok();
}

Result<int> RunCommand(const std::vector<std::string>& argv, std::string* output) {
  if (argv.empty()) return Status::Error("run: empty command");
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Status::Errno("run " + argv[0] + ": pipe", errno);
  pid_t pid = fork();
  if (pid < 0) return Status::Errno("run " + argv[0] + ": fork", errno);
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  UniqueFd rd(pipefd[0]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(rd.get(), buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, n);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output) *output = std::move(out);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

Status Run(const std::vector<std::string>& argv) {
  std::string out;
  auto rc = RunCommand(argv, &out);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return Status::Error("`" + cmd + "` exited " + std::to_string(*rc) + (out.empty() ? "" : ": " + out));
  }
  return Status::Ok();
}

Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) return Status::Error("spawn: empty command");
  // The child reports a failure before exec through this pipe (CLOEXEC: a
  // successful exec closes it and the parent reads EOF).
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0) return Status::Errno("spawn " + argv[0] + ": pipe", errno);
  pid_t pid = fork();
  if (pid < 0) return Status::Errno("spawn " + argv[0] + ": fork", errno);
  if (pid == 0) {
    close(errpipe[0]);
    auto fail = [&](const std::string& what) {
      std::string msg = what + ": " + std::strerror(errno);
      (void)!write(errpipe[1], msg.data(), msg.size());
      _exit(127);
    };
    if (opts.new_session) setsid();
    if (!opts.cgroup.empty()) {
      int fd = open((opts.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) fail("join cgroup " + opts.cgroup);
      std::string me = std::to_string(getpid());
      if (write(fd, me.data(), me.size()) < 0) fail("join cgroup " + opts.cgroup);
      close(fd);
    }
    if (!opts.netns.empty()) {
      std::string p = "/run/netns/" + opts.netns;
      int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) fail("open netns " + p);
      if (setns(fd, CLONE_NEWNET) != 0) fail("enter netns " + p);
      close(fd);
    }
    if (!opts.inherit_stdin) {
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
    }
    if (!opts.log_path.empty()) {
      int fd = open(opts.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd < 0) fail("open log " + opts.log_path);
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fail("exec " + argv[0]);
  }
  close(errpipe[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(errpipe[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) err.append(buf, n);
  close(errpipe[0]);
  if (!err.empty()) {
    waitpid(pid, nullptr, 0);
    return Status::Error("spawn " + argv[0] + ": " + err);
  }
  return pid;
}

bool ProcessMatches(pid_t pid, const std::string& exe_suffix) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  return argv0.size() >= exe_suffix.size() &&
         argv0.compare(argv0.size() - exe_suffix.size(), exe_suffix.size(), exe_suffix) == 0;
}

std::string SelfDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

Result<ScopedNetns> ScopedNetns::Enter(const std::string& path) {
  if (path.empty()) return ScopedNetns(-1);
  int orig = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) return Status::Errno("open /proc/thread-self/ns/net", errno);
  int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    ::close(orig);
    return Status::Errno("open network namespace " + path, e);
  }
  int rc = ::setns(target, CLONE_NEWNET);
  int e = errno;
  ::close(target);
  if (rc != 0) {
    ::close(orig);
    return Status::Errno("enter network namespace " + path, e);
  }
  return ScopedNetns(orig);
}

ScopedNetns::~ScopedNetns() {
  if (orig_fd_ < 0) return;
  // Failing to return would leave this thread in the wrong namespace for
  // everything that follows: that is not recoverable.
  if (::setns(orig_fd_, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "weft: cannot return to the original network namespace: %s\n", std::strerror(errno));
    std::abort();
  }
  ::close(orig_fd_);
}

}  // namespace weft::sys
