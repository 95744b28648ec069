#include "cli/lab/probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "weft/sys.hpp"
#include "weft/unique_fd.hpp"

namespace weft::cli::lab::probe {

namespace {
using Clock = std::chrono::steady_clock;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}
}  // namespace

int HttpGet(const std::string& host_port, const std::string& path, int timeout_ms, std::string* body) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(host_port.c_str() + colon + 1)));
  if (inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &sa.sin_addr) != 1) return 0;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return 0;
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EINPROGRESS || !WaitFd(fd.get(), POLLOUT, deadline)) return 0;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return 0;
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 0;
  std::string resp;
  char buf[4096];
  constexpr size_t kMaxResponse = 4 << 20;  // an agent's /metrics is far smaller
  // The status line only, or (body wanted) everything until the agent closes.
  while (body ? resp.size() < kMaxResponse : resp.find("\r\n") == std::string::npos) {
    if (!WaitFd(fd.get(), POLLIN, deadline)) return 0;
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return 0;
  if (body) {
    auto at = resp.find("\r\n\r\n");
    *body = at == std::string::npos ? std::string() : resp.substr(at + 4);
  }
  return std::atoi(resp.c_str() + 9);
}

int HttpGetStatus(const std::string& host_port, const std::string& path, int timeout_ms) {
  return HttpGet(host_port, path, timeout_ms, nullptr);
}

std::optional<double> MetricValue(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size() || line[name.size()] != ' ') continue;
    try {
      return std::stod(line.substr(name.size() + 1));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

Result<int> FreeLoopbackPort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Status::Errno("socket for a free port", errno);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return Status::Errno("bind 127.0.0.1:0 for a free port", errno);
  return static_cast<int>(ntohs(sa.sin_port));
}

bool Listens(pid_t pid, int port) {
  char want[8];
  std::snprintf(want, sizeof(want), ":%04X", port);
  for (const char* f : {"tcp6", "tcp"}) {
    std::istringstream in(Slurp("/proc/" + std::to_string(pid) + "/net/" + f));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, st;
      ls >> sl >> local >> remote >> st;
      if (st == "0A" && local.size() > 5 && local.compare(local.size() - 5, 5, want) == 0) return true;
    }
  }
  return false;
}

bool Alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  // A zombie (our own child that exited and was not reaped yet) is not alive.
  std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  return !(rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z');
}

std::vector<pid_t> FindProcesses(const std::string& exe_suffix, const std::string& flag, const std::string& value) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = Slurp("/proc/" + name + "/cmdline");
    std::vector<std::string> argv;
    for (size_t p = 0; p < cmd.size();) {
      size_t z = cmd.find('\0', p);
      if (z == std::string::npos) z = cmd.size();
      argv.push_back(cmd.substr(p, z - p));
      p = z + 1;
    }
    if (argv.empty() || argv[0].size() < exe_suffix.size() ||
        argv[0].compare(argv[0].size() - exe_suffix.size(), exe_suffix.size(), exe_suffix) != 0)
      continue;
    for (size_t i = 1; i + 1 < argv.size(); ++i)
      if (argv[i] == flag && argv[i + 1] == value) {
        out.push_back(static_cast<pid_t>(std::stol(name)));
        break;
      }
  }
  return out;
}

void StopProcess(pid_t pid, const std::string& exe_suffix, int timeout_ms) {
  if (!sys::ProcessMatches(pid, exe_suffix)) return;
  kill(pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Alive(pid) && Clock::now() < deadline) {
    waitpid(pid, nullptr, WNOHANG);  // reap if it is our child
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (Alive(pid)) {
    kill(pid, SIGKILL);
    auto hard = Clock::now() + std::chrono::seconds(3);
    while (Alive(pid) && Clock::now() < hard) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  waitpid(pid, nullptr, WNOHANG);
}

std::string LogTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string l;
  while (std::getline(in, l)) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

}  // namespace weft::cli::lab::probe
