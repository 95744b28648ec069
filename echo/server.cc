#include "echo/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <chrono>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>

#include "weft/unique_fd.hpp"

namespace weft::echo {

namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 16 * 1024 * 1024;
constexpr int kIdleTimeoutSec = 300;
constexpr int kSniffTimeoutMs = 200;

std::string SockaddrToString(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
    inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin6_port));
  }
  inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads more bytes into buf; false on EOF, error or idle timeout.
bool ReadMore(int fd, std::string& buf) {
  char tmp[16384];
  for (;;) {
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buf.append(tmp, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// HTTP if the stream starts with an upper-case token (<= 7 chars) and a space.
// nullopt: not decidable yet (need more bytes).
std::optional<bool> LooksLikeHttp(const std::string& buf) {
  for (size_t i = 0; i < buf.size() && i < 8; ++i) {
    char c = buf[i];
    if (c == ' ') return i > 0;
    if (c < 'A' || c > 'Z') return false;
  }
  if (buf.size() >= 8) return false;
  return std::nullopt;
}

void RawEcho(int fd, std::string buf) {
  if (!buf.empty() && !SendAll(fd, buf.data(), buf.size())) return;
  char tmp[16384];
  for (;;) {
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!SendAll(fd, tmp, static_cast<size_t>(n))) return;
  }
  shutdown(fd, SHUT_WR);
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Parses the head (request line + headers, without the blank line).
std::optional<HttpRequest> ParseHead(const std::string& head) {
  HttpRequest req;
  size_t pos = 0;
  auto next_line = [&](std::string& line) {
    if (pos > head.size()) return false;
    size_t e = head.find('\n', pos);
    if (e == std::string::npos) e = head.size();
    line = head.substr(pos, e - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos = e + 1;
    return true;
  };
  std::string line;
  if (!next_line(line)) return std::nullopt;
  size_t s1 = line.find(' ');
  size_t s2 = line.find(' ', s1 == std::string::npos ? s1 : s1 + 1);
  if (s1 == std::string::npos || s2 == std::string::npos) return std::nullopt;
  req.method = line.substr(0, s1);
  req.path = line.substr(s1 + 1, s2 - s1 - 1);
  req.version = line.substr(s2 + 1);
  if (req.version.rfind("HTTP/1.", 0) != 0) return std::nullopt;
  while (pos < head.size() && next_line(line)) {
    if (line.empty()) continue;
    size_t c = line.find(':');
    if (c == std::string::npos) return std::nullopt;
    std::string name = Trim(line.substr(0, c));
    std::string value = Trim(line.substr(c + 1));
    if (Lower(name) == "content-length") {
      char* end = nullptr;
      unsigned long long v = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v > kMaxBodyBytes) return std::nullopt;
      req.content_length = static_cast<size_t>(v);
    }
    req.headers.emplace_back(std::move(name), std::move(value));
  }
  return req;
}

bool KeepAlive(const HttpRequest& req) {
  std::string conn;
  for (const auto& [k, v] : req.headers)
    if (Lower(k) == "connection") conn = Lower(v);
  if (req.version == "HTTP/1.0") return conn.find("keep-alive") != std::string::npos;
  return conn.find("close") == std::string::npos;
}

void SendSimple(int fd, int code, const char* reason) {
  std::string body = std::string(reason) + "\n";
  std::string resp = "HTTP/1.1 " + std::to_string(code) + " " + reason +
                     "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body;
  SendAll(fd, resp.data(), resp.size());
}

void ServeHttp(int fd, const Identity& id, const std::string& peer, std::string buf) {
  for (;;) {
    size_t end = buf.find("\r\n\r\n");
    size_t sep = 4;
    while (end == std::string::npos) {
      if (buf.size() > kMaxHeaderBytes) return SendSimple(fd, 431, "Request Header Fields Too Large");
      if (!ReadMore(fd, buf)) return;
      end = buf.find("\r\n\r\n");
    }
    auto req = ParseHead(buf.substr(0, end));
    if (!req) return SendSimple(fd, 400, "Bad Request");
    buf.erase(0, end + sep);
    while (buf.size() < req->content_length)
      if (!ReadMore(fd, buf)) return;
    buf.erase(0, req->content_length);
    bool keep = KeepAlive(*req);
    std::string body = RenderAnswer(id, peer, *req);
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: " + (keep ? "keep-alive" : "close") +
                       "\r\n\r\n";
    if (req->method != "HEAD") resp += body;
    if (!SendAll(fd, resp.data(), resp.size()) || !keep) return;
    // Skip a stray CRLF between pipelined requests.
    while (buf.size() >= 2 && buf[0] == '\r' && buf[1] == '\n') buf.erase(0, 2);
  }
}

void HandleConnection(int raw_fd, Identity id, std::string peer) {
  UniqueFd fd(raw_fd);
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{kIdleTimeoutSec, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string buf;
  std::optional<bool> http;
  while (!http) {
    // A raw client may send fewer bytes than we need to decide and then wait
    // for its echo: decide "raw" if nothing more arrives shortly.
    if (!buf.empty()) {
      pollfd p{fd.get(), POLLIN, 0};
      int r = poll(&p, 1, kSniffTimeoutMs);
      if (r == 0) {
        http = false;
        break;
      }
    }
    if (!ReadMore(fd.get(), buf)) {
      if (!buf.empty()) RawEcho(fd.get(), std::move(buf));
      return;
    }
    http = LooksLikeHttp(buf);
  }
  if (*http)
    ServeHttp(fd.get(), id, peer, std::move(buf));
  else
    RawEcho(fd.get(), std::move(buf));
}

Result<UniqueFd> Bind(const std::string& listen, uint16_t port, int type) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET6;
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET6, listen.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof(*a6);
  } else if (inet_pton(AF_INET, listen.c_str(), &a4->sin_addr) == 1) {
    family = AF_INET;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof(*a4);
  } else {
    return Status::Error("parse --listen " + listen + ": not an IP address");
  }
  const char* kind = type == SOCK_STREAM ? "tcp" : "udp";
  std::string what = std::string(kind) + " " + listen + " port " + std::to_string(port);
  UniqueFd fd(socket(family, type | SOCK_CLOEXEC, 0));
  if (!fd) return Status::Errno("socket for " + what, errno);
  int one = 1, zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Status::Errno("bind " + what, errno);
  if (type == SOCK_STREAM && ::listen(fd.get(), 1024) != 0) return Status::Errno("listen " + what, errno);
  return fd;
}

void AcceptLoop(UniqueFd lfd, Identity id) {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = accept4(lfd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EMFILE/ENFILE/ENOBUFS: back off instead of spinning.
      std::fprintf(stderr, "weft-echo: accept: %s\n", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    try {
      std::thread(HandleConnection, fd, id, SockaddrToString(ss)).detach();
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "weft-echo: start connection thread: %s\n", e.what());
      close(fd);
    }
  }
}

void UdpLoop(UniqueFd fd, Identity id) {
  std::string buf(65536, '\0');
  const std::string whoami_reply = id.pod + "\n";
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ssize_t n = recvfrom(fd.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n < 0) {
      if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    std::string_view msg(buf.data(), static_cast<size_t>(n));
    const std::string_view reply = msg == "whoami\n" ? std::string_view(whoami_reply) : msg;
    sendto(fd.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
  }
}

}  // namespace

std::string RenderAnswer(const Identity& id, const std::string& peer, const HttpRequest& req) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [k, v] : req.headers) headers[k] = v;
  nlohmann::json j = {{"pod", id.pod},       {"namespace", id.ns}, {"version", id.version},
                      {"serviceAccount", id.service_account},      {"peer", peer},
                      {"method", req.method}, {"path", req.path},  {"headers", headers}};
  return j.dump() + "\n";
}

Status Start(const ServerOptions& opts) {
  std::vector<std::pair<UniqueFd, UniqueFd>> socks;
  for (uint16_t port : opts.ports) {
    auto tcp = Bind(opts.listen, port, SOCK_STREAM);
    if (!tcp.ok()) return tcp.status();
    auto udp = Bind(opts.listen, port, SOCK_DGRAM);
    if (!udp.ok()) return udp.status();
    socks.emplace_back(std::move(*tcp), std::move(*udp));
  }
  for (auto& [tcp, udp] : socks) {
    std::thread(AcceptLoop, std::move(tcp), opts.id).detach();
    std::thread(UdpLoop, std::move(udp), opts.id).detach();
  }
  return Status::Ok();
}

}  // namespace weft::echo
