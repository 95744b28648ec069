#include "weft/node/admin.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/node/json_fields.hpp"
#include "weft/sys.hpp"

namespace weft::node {

namespace {

using internal::Fields;
using internal::Json;
using Clock = std::chrono::steady_clock;

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(a.sun_path))
    return Status::Error("admin socket " + path + ": a unix socket path must be 1 to " +
                             std::to_string(sizeof(a.sun_path) - 1) + " bytes (this one is " +
                             std::to_string(path.size()) + ")",
                         ENAMETOOLONG);
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

int MsLeft(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
}

// Waits for `events` on fd until the deadline: false on timeout or error.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, MsLeft(deadline));
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

// Writes all of `data` before the deadline (non-blocking fd).
bool WriteAll(int fd, std::string_view data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(fd, POLLOUT, deadline)) continue;
    return false;
  }
  return true;
}

// Ends an answered connection: what the client sent beyond its request is
// read and dropped (what is there now, at most 64 KiB), so that closing does
// not reset the connection before the client has read the answer.
void Finish(int fd) {
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; ++i) {
  }
}

std::string ErrorAnswer(const std::string& why) {
  return Json{{"protocol", kAdminProtocol}, {"error", why}}.dump(-1, ' ', false, Json::error_handler_t::replace) +
         "\n";
}

// A connected, non-blocking unix socket to `path` (retrying while its backlog is full).
Result<UniqueFd> Connect(const std::string& path, Clock::time_point deadline) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return Status::Errno("socket for " + path, errno);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0) return fd;
    const int err = errno;
    if (err == EAGAIN && Clock::now() < deadline) {  // the agent is serving another client
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (err == EAGAIN) return Status::Error("connect " + path + ": busy until the deadline", ETIMEDOUT);
    return Status::Errno("connect " + path, err);
  }
}

}  // namespace

std::string RenderAgentInfo(const AgentInfo& i) {
  return Json{{"protocol", i.protocol},
              {"node", i.node},
              {"pin_root", i.pin_root},
              {"state_dir", i.state_dir},
              {"netns", i.netns},
              {"pid", i.pid},
              {"agent_version", i.agent_version},
              {"abi_version", i.abi_version},
              {"names_schema", i.names_schema},
              {"mode", i.mode},
              {"source", i.source},
              {"applied_version", i.applied_version},
              {"generation", i.generation},
              {"healthy", i.healthy},
              {"controller_connected", i.controller_connected},
              {"metrics", i.metrics}}
             .dump(-1, ' ', false, Json::error_handler_t::replace) +  // a path need not be UTF-8
         "\n";
}

Result<AgentInfo> ParseAgentInfo(std::string_view text, const std::string& what) {
  if (text.size() > kMaxAdminAnswer)
    return Status::Error(what + ": answer longer than " + std::to_string(kMaxAdminAnswer) + " bytes", EPROTO);
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Error(what + ": the answer is not a JSON object", EPROTO);
  Fields f(j, what);
  AgentInfo i;
  if (Status st = f.U32("protocol", &i.protocol); !st.ok()) return Status::Error(st.message(), EPROTO);
  if (i.protocol != kAdminProtocol)
    return Status::Error(what + ": admin protocol " + std::to_string(i.protocol) + ", this build speaks " +
                             std::to_string(kAdminProtocol) + " (the agent and weftctl are of different versions)",
                         EPROTO);
  if (f.Has("error")) {
    std::string why;
    WEFT_RETURN_IF_ERROR(f.Str("error", &why));
    return Status::Error(what + ": refused: " + why, EACCES);
  }
  const std::pair<const char*, std::string*> strings[] = {
      {"node", &i.node},   {"pin_root", &i.pin_root}, {"state_dir", &i.state_dir}, {"netns", &i.netns},
      {"agent_version", &i.agent_version}, {"mode", &i.mode}, {"source", &i.source}, {"metrics", &i.metrics}};
  const std::pair<const char*, uint64_t*> u64s[] = {
      {"pid", &i.pid}, {"applied_version", &i.applied_version}, {"generation", &i.generation}};
  const std::pair<const char*, uint32_t*> u32s[] = {{"abi_version", &i.abi_version},
                                                    {"names_schema", &i.names_schema}};
  const std::pair<const char*, bool*> bools[] = {{"healthy", &i.healthy},
                                                 {"controller_connected", &i.controller_connected}};
  Status st;
  for (const auto& [key, out] : strings)
    if (st.ok()) st = f.Str(key, out);
  for (const auto& [key, out] : u64s)
    if (st.ok()) st = f.U64(key, out);
  for (const auto& [key, out] : u32s)
    if (st.ok()) st = f.U32(key, out);
  for (const auto& [key, out] : bools)
    if (st.ok()) st = f.Bool(key, out);
  if (!st.ok()) return Status::Error(st.message(), EPROTO);
  return i;
}

Result<std::string> AdminExchange(const std::string& socket_path, std::string_view request,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto fd = Connect(socket_path, deadline);
  if (!fd.ok()) return fd.status();
  Status send_error;
  errno = 0;
  if (!WriteAll(fd->get(), request, deadline)) {
    // The agent may answer (a refusal) and close before it reads what we
    // send: that answer is still ours to read.
    const int err = errno;
    if (err != EPIPE && err != ECONNRESET)
      return Status::Error("send to " + socket_path + ": " + (err ? std::strerror(err) : "timed out"),
                           err ? err : ETIMEDOUT);
    send_error = Status::Errno("send to " + socket_path, err);
  } else {
    ::shutdown(fd->get(), SHUT_WR);
  }
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.size() > kMaxAdminAnswer)
        return Status::Error(socket_path + ": answer longer than " + std::to_string(kMaxAdminAnswer) + " bytes",
                             EPROTO);
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET && !answer.empty()) break;  // it answered, then dropped the rest of our request
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(fd->get(), POLLIN, deadline)) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return Status::Error(socket_path + ": no answer within " + std::to_string(timeout.count()) + " ms", ETIMEDOUT);
    return Status::Errno("read " + socket_path, errno);
  }
  if (answer.empty() && !send_error.ok()) return send_error;
  return answer;
}

Result<AgentInfo> QueryAgent(const std::string& socket_path, std::chrono::milliseconds timeout) {
  auto answer = AdminExchange(socket_path, "info\n", timeout);
  if (!answer.ok()) return answer.status();
  return ParseAgentInfo(*answer, "agent " + socket_path);
}

// ---- server ---------------------------------------------------------------------

Status RemoveStaleSocket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Status::Ok() : Status::Errno("stat " + path, errno);
  if (!S_ISSOCK(st.st_mode)) return Status::Error(path + ": exists and is not a socket", EEXIST);
  auto fd = Connect(path, Clock::now());
  if (fd.ok() || (fd.status().err() != ECONNREFUSED && fd.status().err() != ENOENT))
    return Status::Error(path + ": another process serves this socket (an agent of the same node?)", EADDRINUSE);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::Errno("remove stale socket " + path, errno);
  return Status::Ok();
}

Result<std::unique_ptr<AdminServer>> AdminServer::Start(const std::string& socket_path, InfoFn info) {
  auto addr = UnixAddress(socket_path);
  if (!addr.ok()) return addr.status();
  const std::string dir = std::filesystem::path(socket_path).parent_path().string();
  struct stat dst {};
  const bool made_dir = ::lstat(dir.c_str(), &dst) != 0 && errno == ENOENT;
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(dir).Wrap("admin socket directory"));
  auto unmake = [&] {
    if (made_dir) ::rmdir(dir.c_str());
  };
  if (Status st = RemoveStaleSocket(socket_path); !st.ok()) {
    unmake();
    return st.Wrap("admin socket");
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    const int err = errno;
    unmake();
    return Status::Errno("admin socket: socket", err);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int err = errno;
    unmake();
    return Status::Errno("admin socket: bind " + socket_path, err);
  }
  struct stat st {};
  if (::chmod(socket_path.c_str(), 0600) != 0 || ::lstat(socket_path.c_str(), &st) != 0) {
    int err = errno;
    ::unlink(socket_path.c_str());
    unmake();
    return Status::Errno("admin socket: chmod 0600 " + socket_path, err);
  }
  if (::listen(fd.get(), 8) != 0) {
    int err = errno;
    ::unlink(socket_path.c_str());
    unmake();
    return Status::Errno("admin socket: listen on " + socket_path, err);
  }
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) {
    int err = errno;
    ::unlink(socket_path.c_str());
    unmake();
    return Status::Errno("admin socket: eventfd", err);
  }
  std::unique_ptr<AdminServer> s(
      new AdminServer(socket_path, std::move(fd), std::move(stop), st.st_ino, std::move(info)));
  if (made_dir) s->made_dir_ = dir;
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

AdminServer::AdminServer(std::string path, UniqueFd listen_fd, UniqueFd stop_fd, ino_t ino, InfoFn info)
    : path_(std::move(path)),
      listen_fd_(std::move(listen_fd)),
      stop_fd_(std::move(stop_fd)),
      ino_(ino),
      info_(std::move(info)) {}

AdminServer::~AdminServer() {
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == ino_) ::unlink(path_.c_str());
  if (!made_dir_.empty()) ::rmdir(made_dir_.c_str());  // only if empty: names.json etc. keep it
}

void AdminServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{stop_fd_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    if (!(fds[1].revents & POLLIN)) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (conn) Serve(std::move(conn));  // one at a time: the next waits in the backlog
  }
}

void AdminServer::Serve(UniqueFd conn) {
  const auto deadline = Clock::now() + kAdminDeadline;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  if (cred.uid != 0 && cred.uid != ::geteuid()) {
    WriteAll(conn.get(),
             ErrorAnswer("permission denied: uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) +
                         ") is not root; the agent's admin socket is root's"),
             deadline);
    Finish(conn.get());
    return;
  }
  std::string request;
  char buf[kMaxAdminRequest + 1];
  while (request.find('\n') == std::string::npos) {
    ssize_t n = ::recv(conn.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      request.append(buf, static_cast<size_t>(n));
      if (request.size() > kMaxAdminRequest) {
        WriteAll(conn.get(), ErrorAnswer("request longer than " + std::to_string(kMaxAdminRequest) + " bytes"),
                 deadline);
        Finish(conn.get());
        return;
      }
      continue;
    }
    if (n == 0) break;  // the client finished writing (no newline needed)
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(conn.get(), POLLIN, deadline)) continue;
    return;  // deadline or error: closed without an answer
  }
  WriteAll(conn.get(), Respond(request, info_), deadline);
  Finish(conn.get());
}

std::string AdminServer::Respond(std::string_view request, const InfoFn& info) {
  std::string_view r = request.substr(0, request.find('\n'));
  while (!r.empty() && (r.back() == '\r' || r.back() == ' ')) r.remove_suffix(1);
  while (!r.empty() && r.front() == ' ') r.remove_prefix(1);
  if (r == "info") return RenderAgentInfo(info());
  std::string shown(r.substr(0, 64));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == '"') c = '?';
  return ErrorAnswer("unknown request \"" + shown + "\" (known: info)");
}

}  // namespace weft::node
