// weft-loadgen: a bounded traffic generator for the lab tests and the demo,
// run inside a pod (`weftctl lab exec POD -- weft-loadgen ...`).
//
//   --count N                 N HTTP calls, one new connection each, back to back
//   --duration S --rate R     R new connections/s (HTTP call each) for S seconds
//   --long L --interval-ms I  plus L long-lived raw connections, each sending a
//                             line every I ms and checking the echo
// Prints one JSON object: calls, ok, connect_failures, request_failures,
// per-pod answer counts, long-lived stats, first errors. Exit 0 if nothing failed.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;  // host:port
  std::string path = "/";
  int count = 0;
  double duration_s = 0;
  int rate = 100;
  int long_conns = 0;
  int interval_ms = 10;
  int timeout_ms = 2000;
  int workers = 16;
  bool text = false;
};

struct Stats {
  std::mutex mu;
  std::map<std::string, long> pods;
  std::vector<std::string> errors;
  std::atomic<long> calls{0}, ok{0}, connect_failures{0}, request_failures{0};
  std::atomic<long> long_open{0}, long_connect_failures{0}, long_broken{0}, long_messages{0};
  void Error(const std::string& e) {
    std::lock_guard<std::mutex> l(mu);
    if (errors.size() < 20) errors.push_back(e);
  }
};

sockaddr_storage g_addr{};
socklen_t g_addrlen = 0;
std::string g_host;

bool Resolve(const std::string& target) {
  auto colon = target.rfind(':');
  if (colon == std::string::npos) return false;
  g_host = target.substr(0, colon);
  std::string port = target.substr(colon + 1);
  std::string host = g_host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) return false;
  std::memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
  g_addrlen = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

// A connected socket with send/receive timeouts, or -1 (errno set).
int Connect(int timeout_ms) {
  int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));  // bounds connect() too
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&g_addr), g_addrlen) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void OneCall(const Options& o, Stats& st) {
  st.calls++;
  int fd = Connect(o.timeout_ms);
  if (fd < 0) {
    st.connect_failures++;
    st.Error(std::string("connect: ") + std::strerror(errno));
    return;
  }
  std::string req = "GET " + o.path + " HTTP/1.1\r\nHost: " + g_host + "\r\nConnection: close\r\n\r\n";
  std::string resp;
  bool sent = SendAll(fd, req);
  char buf[8192];
  for (;;) {
    if (!sent) break;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) sent = false;  // error or timeout
      break;
    }
    resp.append(buf, static_cast<size_t>(n));
  }
  int err = errno;
  close(fd);
  size_t body = resp.find("\r\n\r\n");
  if (!sent || resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) {
    st.request_failures++;
    st.Error(!sent ? std::string("request: ") + std::strerror(err) : "bad response: " + resp.substr(0, 80));
    return;
  }
  std::string pod;
  try {
    pod = nlohmann::json::parse(resp.substr(body + 4)).value("pod", "");
  } catch (const std::exception& e) {
    st.request_failures++;
    st.Error(std::string("bad JSON: ") + e.what());
    return;
  }
  st.ok++;
  std::lock_guard<std::mutex> l(st.mu);
  st.pods[pod]++;
}

void LongConn(const Options& o, Stats& st, int id, Clock::time_point end) {
  int fd = Connect(o.timeout_ms);
  if (fd < 0) {
    st.long_connect_failures++;
    st.Error(std::string("long connect: ") + std::strerror(errno));
    return;
  }
  st.long_open++;
  char buf[256];
  for (long seq = 0; Clock::now() < end; ++seq) {
    std::string msg = "ping " + std::to_string(id) + " " + std::to_string(seq) + "\n";
    std::string got;
    bool good = SendAll(fd, msg);
    while (good && got.size() < msg.size()) {
      ssize_t n = recv(fd, buf, std::min(sizeof(buf), msg.size() - got.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) good = false;
      else got.append(buf, static_cast<size_t>(n));
    }
    if (!good || got != msg) {
      st.long_broken++;
      st.Error("long connection " + std::to_string(id) + " broke at message " + std::to_string(seq) + ": " +
               (good ? "wrong echo" : std::strerror(errno)));
      close(fd);
      return;
    }
    st.long_messages++;
    std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weft-loadgen: bounded HTTP + long-lived TCP traffic for Weft labs"};
  Options o;
  app.add_option("--target", o.target, "HOST:PORT (resolved once)")->required();
  app.add_option("--path", o.path, "HTTP path")->default_val("/");
  app.add_option("--count", o.count, "sequential calls (mode 1)")->check(CLI::Range(0, 1000000));
  app.add_option("--duration", o.duration_s, "seconds of open-loop traffic (mode 2)")->check(CLI::Range(0.0, 600.0));
  app.add_option("--rate", o.rate, "new connections per second in mode 2")->default_val(100)->check(CLI::Range(1, 5000));
  app.add_option("--long", o.long_conns, "long-lived connections in mode 2")->check(CLI::Range(0, 1000));
  app.add_option("--interval-ms", o.interval_ms, "send interval on long-lived connections")->default_val(10);
  app.add_option("--timeout-ms", o.timeout_ms, "per-operation timeout")->default_val(2000);
  app.add_option("--workers", o.workers, "threads issuing new connections")->default_val(16)->check(CLI::Range(1, 256));
  app.add_flag("--text", o.text, "print a human-readable report instead of JSON");
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (o.count == 0 && o.duration_s <= 0) {
    std::fprintf(stderr, "weft-loadgen: give --count or --duration\n");
    return 2;
  }
  if (!Resolve(o.target)) {
    std::fprintf(stderr, "weft-loadgen: cannot resolve %s\n", o.target.c_str());
    return 2;
  }
  Stats st;
  auto start = Clock::now();
  if (o.count > 0) {
    for (int i = 0; i < o.count; ++i) OneCall(o, st);
  } else {
    auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
    std::vector<std::thread> threads;
    for (int i = 0; i < o.long_conns; ++i) threads.emplace_back(LongConn, std::cref(o), std::ref(st), i, end);
    const auto period = std::chrono::duration<double>(1.0 / o.rate);
    for (int w = 0; w < o.workers; ++w) {
      threads.emplace_back([&, w] {
        for (long k = w;; k += o.workers) {
          auto when = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(k));
          if (when >= end) break;
          std::this_thread::sleep_until(when);
          OneCall(o, st);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  nlohmann::json j = {{"target", o.target},
                      {"seconds", secs},
                      {"calls", st.calls.load()},
                      {"ok", st.ok.load()},
                      {"connect_failures", st.connect_failures.load()},
                      {"request_failures", st.request_failures.load()},
                      {"pods", st.pods},
                      {"long",
                       {{"requested", o.long_conns},
                        {"opened", st.long_open.load()},
                        {"connect_failures", st.long_connect_failures.load()},
                        {"broken", st.long_broken.load()},
                        {"messages", st.long_messages.load()}}},
                      {"errors", st.errors}};
  if (o.text) {
    std::printf("%ld calls to %s in %.1fs: %ld ok, %ld failed connects, %ld failed requests\n", st.calls.load(),
                o.target.c_str(), secs, st.ok.load(), st.connect_failures.load(), st.request_failures.load());
    for (const auto& [pod, n] : st.pods) std::printf("  %-24s %6ld answers\n", pod.c_str(), n);
    if (o.long_conns > 0)
      std::printf("%d long-lived connections: %ld opened, %ld messages echoed, %ld broken, %ld failed connects\n",
                  o.long_conns, st.long_open.load(), st.long_messages.load(), st.long_broken.load(),
                  st.long_connect_failures.load());
    for (const auto& e : st.errors) std::printf("  error: %s\n", e.c_str());
  } else {
    std::printf("%s\n", j.dump().c_str());
  }
  bool failed = st.connect_failures || st.request_failures || st.long_connect_failures || st.long_broken;
  return failed ? 1 : 0;
}
