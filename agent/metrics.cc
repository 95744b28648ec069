#include "agent/metrics.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <vector>

#include "agent/datapath/kernel_map_writer.hpp"
#include "weft/node/enum_names.hpp"

namespace weft::agent {

namespace {

std::string Escape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatDouble(double v) {
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}

void Family(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void Sample(std::string* out, const std::string& name, const std::string& labels, uint64_t v) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += ' ' + std::to_string(v) + '\n';
}

constexpr size_t kMaxRequestHead = 8192;

}  // namespace

// ---- Histogram ----

void Histogram::Observe(double v) {
  std::lock_guard lk(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(const std::string& name, const std::string& help, std::string* out) const {
  std::lock_guard lk(mu_);
  Family(out, name.c_str(), "histogram", help.c_str());
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    Sample(out, name + "_bucket", "le=\"" + FormatDouble(bounds_[i]) + "\"", cum);
  }
  cum += counts_.back();
  Sample(out, name + "_bucket", "le=\"+Inf\"", cum);
  *out += name + "_sum " + FormatDouble(sum_) + "\n";
  Sample(out, name + "_count", "", count_);
}

// ---- AgentMetrics ----

AgentMetrics::AgentMetrics(std::string node, std::string version, std::vector<MapCapacity> capacities,
                           const datapath::KernelStatsReader* stats)
    : node_(std::move(node)),
      version_(std::move(version)),
      capacities_(std::move(capacities)),
      stats_(stats),
      reconcile_seconds_({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      topo_(std::make_shared<MetricsTopology>()) {}

void AgentMetrics::RecordReconcile(double seconds, bool ok) {
  reconcile_total_.fetch_add(1, std::memory_order_relaxed);
  if (!ok) reconcile_errors_.fetch_add(1, std::memory_order_relaxed);
  reconcile_seconds_.Observe(seconds);
}

void AgentMetrics::RecordMapWrites(uint64_t entries) {
  map_writes_total_.fetch_add(entries, std::memory_order_relaxed);
  last_map_writes_.store(entries, std::memory_order_relaxed);
}

void AgentMetrics::Publish(std::shared_ptr<const MetricsTopology> topo) {
  std::lock_guard lk(topo_mu_);
  topo_ = std::move(topo);
}

void AgentMetrics::SetTopologyBuilder(std::function<std::shared_ptr<const MetricsTopology>()> builder) {
  std::lock_guard lk(topo_mu_);
  topo_builder_ = std::move(builder);
}

std::shared_ptr<const MetricsTopology> AgentMetrics::Topology() const {
  std::lock_guard lk(topo_mu_);
  if (topo_builder_ && topo_dirty_.exchange(false, std::memory_order_acq_rel)) topo_ = topo_builder_();
  return topo_;
}

std::string AgentMetrics::Render() const {
  auto topo = Topology();
  std::string out;
  out.reserve(4096 + 160 * (topo->services.size() * 2 + topo->backends.size()));

  Family(&out, "weft_agent_info", "gauge", "Agent build and node.");
  Sample(&out, "weft_agent_info", "node=\"" + Escape(node_) + "\",version=\"" + Escape(version_) + "\"", 1);

  Family(&out, "weft_map_capacity", "gauge", "Capacity (max_entries) of each BPF map.");
  for (const auto& c : capacities_) Sample(&out, "weft_map_capacity", "map=\"" + Escape(c.map) + "\"", c.capacity);
  Family(&out, "weft_map_entries", "gauge", "Entries in each LB map, as written by this agent.");
  for (const auto& [map, n] : topo->entries) Sample(&out, "weft_map_entries", "map=\"" + Escape(map) + "\"", n);

  Family(&out, "weft_reconcile_total", "counter", "Reconcile attempts (Apply of a desired state to the maps).");
  Sample(&out, "weft_reconcile_total", "", reconcile_total_.load(std::memory_order_relaxed));
  Family(&out, "weft_reconcile_errors_total", "counter", "Reconcile attempts that failed.");
  Sample(&out, "weft_reconcile_errors_total", "", reconcile_errors_.load(std::memory_order_relaxed));
  reconcile_seconds_.Render("weft_reconcile_duration_seconds", "Duration of reconcile attempts.", &out);
  Family(&out, "weft_config_errors_total", "counter", "Config loads rejected (the last good state was kept).");
  Sample(&out, "weft_config_errors_total", "", config_errors_.load(std::memory_order_relaxed));
  Family(&out, "weft_config_generation", "gauge", "Successful applies of a config since the agent started.");
  Sample(&out, "weft_config_generation", "", generation_.load(std::memory_order_relaxed));
  Family(&out, "weft_reconcile_map_writes_total", "counter",
         "LB map entries (services, slots, backends) upserted or deleted by successful reconciles.");
  Sample(&out, "weft_reconcile_map_writes_total", "", map_writes_total_.load(std::memory_order_relaxed));
  Family(&out, "weft_reconcile_last_map_writes", "gauge",
         "LB map entries upserted or deleted by the last successful reconcile (0: nothing changed).");
  Sample(&out, "weft_reconcile_last_map_writes", "", last_map_writes_.load(std::memory_order_relaxed));
  Family(&out, "weft_backends_withheld", "gauge",
         "Backends left out of the LB maps because their workload is on this node but has no interface here.");
  Sample(&out, "weft_backends_withheld", "", backends_withheld_.load(std::memory_order_relaxed));

  if (controller_mode_.load(std::memory_order_relaxed)) {
    Family(&out, "weft_controller_connected", "gauge",
           "1 while the config stream to weft-controller is up (a config was received on it).");
    Sample(&out, "weft_controller_connected", "", controller_connected_.load(std::memory_order_relaxed) ? 1 : 0);
    Family(&out, "weft_config_version", "gauge", "Controller config version last applied to the maps (0: none).");
    Sample(&out, "weft_config_version", "", config_version_.load(std::memory_order_relaxed));
    Family(&out, "weft_config_nacks_total", "counter",
           "Controller pushes rejected (NACKed); the last good config was kept.");
    Sample(&out, "weft_config_nacks_total", "", config_nacks_.load(std::memory_order_relaxed));
  }

  if (const PolicyCountersSource* ps = policy_.load(std::memory_order_acquire)) {
    if (auto pc = ps->ReadPolicyCounters(); pc.ok()) {
      Family(&out, "weft_flows_total", "counter",
             "Connections seen by the TC policy programs, by identities, destination port, protocol, verdict, "
             "drop reason, deciding policy and where they were seen (egress of the client's pod, ingress of the "
             "server's).");
      for (const auto& f : pc->flows)
        Sample(&out, "weft_flows_total",
               "src=\"" + Escape(f.src) + "\",dst=\"" + Escape(f.dst) + "\",dport=\"" + std::to_string(f.dport) +
                   "\",proto=\"" + Escape(f.proto) + "\",verdict=\"" + Escape(f.verdict) + "\",reason=\"" +
                   Escape(f.reason) + "\",policy=\"" + Escape(f.policy) + "\",direction=\"" + Escape(f.direction) +
                   "\"",
               f.connections);
      Family(&out, "weft_drops_total", "counter", "Packets dropped by the TC policy programs, by reason.");
      for (const auto& [reason, n] : pc->drops)
        Sample(&out, "weft_drops_total", "reason=\"" + Escape(reason) + "\"", n);
      Family(&out, "weft_flow_events_lost_total", "counter",
             "Flow events lost because the ring buffer was full (the aggregates never lose).");
      Sample(&out, "weft_flow_events_lost_total", "", pc->events_lost);
      Family(&out, "weft_flows_uncounted_total", "counter",
             "New flows left out of the aggregates because their table was full (its capacity of keys).");
      Sample(&out, "weft_flows_uncounted_total", "", pc->flows_uncounted);
      Family(&out, "weft_workloads_unplaced", "gauge",
             "Local workloads with no interface on this node (no route to their address, or not a veth): not "
             "enforced, and their backends are withheld from load balancing.");
      Sample(&out, "weft_workloads_unplaced", "", pc->unplaced_workloads);
    } else {
      out += "# weft_flows_total unavailable: " + pc.status().message() + "\n";
    }
  }

  if (!stats_) return out;
  std::vector<uint32_t> ids;
  for (const auto& s : topo->services) ids.push_back(s.id);
  if (auto svc = stats_->Services(ids); svc.ok()) {
    std::vector<std::pair<std::string, const datapath::ServiceCounters*>> rows;
    for (const auto& s : topo->services) {
      auto it = svc->find(s.id);
      if (it == svc->end()) continue;
      rows.emplace_back("service=\"" + Escape(s.service) + "\",vip=\"" + Escape(s.vip) + "\",port=\"" +
                            std::to_string(s.port) + "\",proto=\"" + s.proto + "\"",
                        &it->second);
    }
    Family(&out, "weft_service_connections_total", "counter",
           "Connects and UDP sends to a service VIP rewritten to a backend.");
    for (const auto& [labels, c] : rows) Sample(&out, "weft_service_connections_total", labels, c->connects);
    Family(&out, "weft_service_no_backend_total", "counter", "Connects and UDP sends refused: no backend.");
    for (const auto& [labels, c] : rows) Sample(&out, "weft_service_no_backend_total", labels, c->no_backend);
  } else {
    out += "# weft_service_connections_total unavailable: " + svc.status().message() + "\n";
  }

  ids.clear();
  for (const auto& b : topo->backends) ids.push_back(b.id);
  if (auto be = stats_->Backends(ids); be.ok()) {
    Family(&out, "weft_backend_connections_total", "counter", "Connections and UDP sends steered to a backend.");
    for (const auto& b : topo->backends) {
      auto it = be->find(b.id);
      if (it != be->end())
        Sample(&out, "weft_backend_connections_total", "backend=\"" + Escape(b.backend) + "\"", it->second);
    }
  } else {
    out += "# weft_backend_connections_total unavailable: " + be.status().message() + "\n";
  }

  if (auto g = stats_->Global(); g.ok()) {
    Family(&out, "weft_lb_events_total", "counter", "Socket LB events counted by the BPF programs.");
    for (uint32_t i = 0; i < WEFT_STAT_MAX; ++i)
      Sample(&out, "weft_lb_events_total", "event=\"" + node::LbStatName(i) + "\"", (*g)[i]);
  } else {
    out += "# weft_lb_events_total unavailable: " + g.status().message() + "\n";
  }
  return out;
}

// ---- HTTP server ----

namespace {

std::string HttpResponse(int code, const char* reason, const std::string& content_type, const std::string& body,
                         bool head_only) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  if (!head_only) r += body;
  return r;
}

Result<sockaddr_storage> ParseListen(const std::string& listen, socklen_t* len) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size())
    return Status::Error("metrics address '" + listen + "': expected HOST:PORT");
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return Status::Error("metrics address '" + listen + "': a host is required (e.g. 127.0.0.1)");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Status::Error("metrics address '" + listen + "': " + gai_strerror(rc));
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return ss;
}

std::string FormatSockaddr(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
}

bool IsLoopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr) >> 24) == 127;
  return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen, const AgentMetrics& metrics) {
  socklen_t len = 0;
  auto addr = ParseListen(listen, &len);
  if (!addr.ok()) return addr.status();
  if (!IsLoopback(*addr)) spdlog::warn("metrics address {} is not a loopback address", listen);
  UniqueFd fd(socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Status::Errno("metrics: socket for " + listen, errno);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), len) != 0)
    return Status::Errno("metrics: bind " + listen, errno);
  if (::listen(fd.get(), 16) != 0) return Status::Errno("metrics: listen on " + listen, errno);
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  UniqueFd stop(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return Status::Errno("metrics: eventfd", errno);
  std::unique_ptr<MetricsServer> s(new MetricsServer(std::move(fd), std::move(stop), FormatSockaddr(bound), metrics));
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

MetricsServer::MetricsServer(UniqueFd listen_fd, UniqueFd stop_fd, std::string address, const AgentMetrics& metrics)
    : listen_fd_(std::move(listen_fd)), stop_fd_(std::move(stop_fd)), address_(std::move(address)), metrics_(metrics) {}

MetricsServer::~MetricsServer() {
  uint64_t one = 1;
  (void)!write(stop_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

namespace {

// One client connection of the metrics server.
struct Conn {
  UniqueFd fd;
  std::string in;   // the request head so far
  std::string out;  // the answer, once the head is in
  size_t sent = 0;
  bool answering = false;
  std::chrono::steady_clock::time_point deadline;
};

bool HeadComplete(const std::string& head) {
  return head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos;
}

}  // namespace

void MetricsServer::Loop() {
  using Clock = std::chrono::steady_clock;
  std::vector<Conn> conns;
  std::vector<pollfd> fds;
  for (;;) {
    auto now = Clock::now();
    fds.clear();
    fds.push_back({stop_fd_.get(), POLLIN, 0});
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    int timeout = -1;
    for (const auto& c : conns) {
      fds.push_back({c.fd.get(), static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count() + 1;
      ms = std::max<int64_t>(ms, 0);
      timeout = timeout < 0 ? static_cast<int>(ms) : std::min(timeout, static_cast<int>(ms));
    }
    if (poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents) return;
    now = Clock::now();
    // Work on the connections polled (new ones are appended after).
    const size_t polled = conns.size();
    for (size_t i = 0; i < polled; ++i) {
      Conn& c = conns[i];
      const short rev = fds[i + 2].revents;
      if (!rev) continue;
      if (!c.answering) {
        char buf[2048];
        ssize_t n = recv(c.fd.get(), buf, sizeof(buf), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {  // closed (or reset) before a whole request: nothing to answer
          c.fd.reset();
          continue;
        }
        c.in.append(buf, static_cast<size_t>(n));
        if (HeadComplete(c.in)) {
          c.out = Respond(c.in, metrics_);
        } else if (c.in.size() >= kMaxRequestHead) {
          c.out = HttpResponse(400, "Bad Request", "text/plain; charset=utf-8", "bad request\n", false);
        } else {
          continue;
        }
        c.answering = true;
        c.deadline = now + std::chrono::milliseconds(kWriteTimeoutMs);
      }
      while (c.sent < c.out.size()) {
        ssize_t n = send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) {
          c.fd.reset();
          break;
        }
        c.sent += static_cast<size_t>(n);
      }
      if (c.fd && c.sent == c.out.size()) {
        shutdown(c.fd.get(), SHUT_WR);
        c.fd.reset();
      }
    }
    // Deadlines: a request head that did not come in time, an answer not taken.
    for (auto& c : conns) {
      if (!c.fd || now < c.deadline) continue;
      if (!c.answering && !c.in.empty()) {
        std::string r = HttpResponse(408, "Request Timeout", "text/plain; charset=utf-8", "request timeout\n", false);
        (void)!send(c.fd.get(), r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(c.fd.get(), SHUT_WR);
      }
      c.fd.reset();
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return !c.fd; }), conns.end());
    if (!(fds[1].revents & POLLIN)) continue;
    for (;;) {
      UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd) break;  // EAGAIN (all taken), ECONNABORTED, EMFILE: the next event
      if (conns.size() >= kMaxConnections) {
        // Full: the oldest connection still waiting for its request makes room.
        auto oldest = conns.end();
        for (auto it = conns.begin(); it != conns.end(); ++it)
          if (!it->answering && (oldest == conns.end() || it->deadline < oldest->deadline)) oldest = it;
        if (oldest == conns.end()) break;  // every one is being answered: fd closes, the client retries
        conns.erase(oldest);
      }
      Conn c;
      c.fd = std::move(fd);
      c.deadline = now + std::chrono::milliseconds(kReadTimeoutMs);
      conns.push_back(std::move(c));
    }
  }
}

std::string MetricsServer::Respond(const std::string& request_head, const AgentMetrics& metrics) {
  const std::string text = "text/plain; charset=utf-8";
  auto eol = request_head.find_first_of("\r\n");
  std::string line = request_head.substr(0, eol);
  // Request line: METHOD SP TARGET SP HTTP/1.x
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos)
    return HttpResponse(400, "Bad Request", text, "bad request\n", false);
  std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
              version = line.substr(sp2 + 1);
  if (method.empty() || target.empty() || target[0] != '/' || version.rfind("HTTP/1.", 0) != 0)
    return HttpResponse(400, "Bad Request", text, "bad request\n", false);
  bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) return HttpResponse(405, "Method Not Allowed", text, "method not allowed\n", false);
  std::string path = target.substr(0, target.find('?'));
  if (path == "/metrics")
    return HttpResponse(200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics.Render(), head_only);
  if (path == "/healthz") {
    if (metrics.healthy()) return HttpResponse(200, "OK", text, "ok\n", head_only);
    return HttpResponse(503, "Service Unavailable", text, "not ready: no successful reconcile yet\n", head_only);
  }
  return HttpResponse(404, "Not Found", text, "not found\n", head_only);
}

}  // namespace weft::agent
