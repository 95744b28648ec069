// The agent's Prometheus metrics and the tiny HTTP/1.1 server that serves
// them (GET /metrics, GET /healthz).
//
// Threads: the server runs on its own thread. A scrape reads the per-CPU BPF
// counters (one syscall per service/backend id) and formats text, which can
// take milliseconds on a large node, and a client may be slow to read: none of
// that may delay a config reload on the reconcile thread. The other way
// round, a long Apply must not make scrapes and /healthz time out (a
// supervisor would kill a healthy agent). So the two threads share only
// atomics and an immutable snapshot (MetricsTopology) swapped under a mutex
// held for a pointer copy; the kernel serializes the map accesses themselves.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

namespace weft::datapath {
class KernelStatsReader;
}

namespace weft::agent {

// Label values for the per-id counters and entry counts, published by the
// reconcile thread after each Apply (and after adoption).
struct MetricsTopology {
  struct Service {
    uint32_t id = 0;
    std::string service;  // "namespace/name"
    std::string vip;
    uint16_t port = 0;
    std::string proto;  // "tcp" | "udp"
  };
  struct Backend {
    uint32_t id = 0;
    std::string backend;  // "ip:port"
  };
  std::vector<Service> services;
  std::vector<Backend> backends;
  std::vector<std::pair<std::string, uint64_t>> entries;  // map name -> entries
};

// Identity-policy counters (agent/policy/), read on the metrics thread and
// rendered as weft_flows_total, weft_drops_total,
// weft_flow_events_lost_total and weft_flows_uncounted_total. Label values are already decoded (SPIFFE ids,
// policy names) by the source.
struct PolicyCounters {
  struct Flow {
    std::string src, dst, proto, verdict, reason, policy, direction;
    uint16_t dport = 0;
    uint64_t connections = 0;
  };
  std::vector<Flow> flows;
  std::vector<std::pair<std::string, uint64_t>> drops;  // reason -> count
  uint64_t events_lost = 0;
  uint64_t flows_uncounted = 0;  // new flows whose key found the aggregate table full
  uint64_t unplaced_workloads = 0;  // local workloads with no interface on this node (not enforced)
};
class PolicyCountersSource {
 public:
  virtual ~PolicyCountersSource() = default;
  virtual Result<PolicyCounters> ReadPolicyCounters() const = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  void Observe(double v);
  // Appends the Prometheus text of a histogram family named `name`.
  void Render(const std::string& name, const std::string& help, std::string* out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last: +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class AgentMetrics {
 public:
  struct MapCapacity {
    std::string map;
    uint32_t capacity = 0;
  };
  AgentMetrics(std::string node, std::string version, std::vector<MapCapacity> capacities,
               const datapath::KernelStatsReader* stats);

  void RecordReconcile(double seconds, bool ok);
  void ConfigError() { config_errors_.fetch_add(1, std::memory_order_relaxed); }
  void ConfigApplied() { generation_.fetch_add(1, std::memory_order_relaxed); }
  void SetHealthy() { healthy_.store(true, std::memory_order_release); }
  // Entries upserted or deleted in the LB maps by one successful Apply (0 for
  // an unchanged state: a re-sent snapshot must not flap the data plane).
  void RecordMapWrites(uint64_t entries);

  // Controller mode (--controller): the weft_controller_* and
  // weft_config_version/nacks families are rendered only once enabled.
  void EnableControllerMetrics() { controller_mode_.store(true, std::memory_order_relaxed); }
  void SetControllerConnected(bool up) { controller_connected_.store(up, std::memory_order_relaxed); }
  void SetConfigVersion(uint64_t v) { config_version_.store(v, std::memory_order_relaxed); }
  void ConfigNack() { config_nacks_.fetch_add(1, std::memory_order_relaxed); }
  // Backends left out of the LB maps: their workload is local but has no
  // interface on this node (weft_backends_withheld).
  void SetBackendsWithheld(uint64_t n) { backends_withheld_.store(n, std::memory_order_relaxed); }
  bool healthy() const { return healthy_.load(std::memory_order_acquire); }
  // For the admin endpoint (any thread): what the families above report.
  uint64_t config_version() const { return config_version_.load(std::memory_order_relaxed); }
  uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }
  bool controller_connected() const { return controller_connected_.load(std::memory_order_relaxed); }
  // The policy datapath's counters (nullptr: none); set before the server starts.
  void SetPolicySource(const PolicyCountersSource* src) { policy_.store(src, std::memory_order_release); }
  void Publish(std::shared_ptr<const MetricsTopology> topo);
  // Lazy topology: after TopologyChanged(), the next scrape calls `builder`
  // (on the metrics thread; the builder locks what it reads). So a reconcile
  // never pays for relabelling 100,000 backends; a scrape does, once.
  void SetTopologyBuilder(std::function<std::shared_ptr<const MetricsTopology>()> builder);
  void TopologyChanged() { topo_dirty_.store(true, std::memory_order_release); }

  // The whole exposition (text format 0.0.4).
  std::string Render() const;

 private:
  std::shared_ptr<const MetricsTopology> Topology() const;

  const std::string node_, version_;
  const std::vector<MapCapacity> capacities_;
  const datapath::KernelStatsReader* stats_;
  std::atomic<uint64_t> reconcile_total_{0}, reconcile_errors_{0}, config_errors_{0}, generation_{0};
  std::atomic<bool> healthy_{false};
  std::atomic<uint64_t> map_writes_total_{0}, last_map_writes_{0};
  std::atomic<bool> controller_mode_{false}, controller_connected_{false};
  std::atomic<uint64_t> config_version_{0}, config_nacks_{0}, backends_withheld_{0};
  std::atomic<const PolicyCountersSource*> policy_{nullptr};
  Histogram reconcile_seconds_;
  mutable std::mutex topo_mu_;
  mutable std::shared_ptr<const MetricsTopology> topo_;
  std::function<std::shared_ptr<const MetricsTopology>()> topo_builder_;
  mutable std::atomic<bool> topo_dirty_{false};
};

// One thread serves every connection (poll over all of them): a request is
// answered as soon as its head is in, whatever other connections do. Each
// connection has a deadline: kReadTimeoutMs for its request head (then it is
// closed, with a 408 if it had sent part of one), kWriteTimeoutMs for the
// answer. At most kMaxConnections are open; one more closes the oldest that
// has not sent its request yet. /healthz thus answers while idle clients hold
// connections (before: one connection at a time, 2 s each).
class MetricsServer {
 public:
  static constexpr size_t kMaxConnections = 64;
  static constexpr int kReadTimeoutMs = 2000;
  static constexpr int kWriteTimeoutMs = 5000;

  // listen: "127.0.0.1:9464", "[::1]:9464" (port 0: pick a free one).
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen, const AgentMetrics& metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  const std::string& address() const { return address_; }  // as bound

  // Builds the response to one raw request head (exposed for unit tests).
  static std::string Respond(const std::string& request_head, const AgentMetrics& metrics);

 private:
  MetricsServer(UniqueFd listen_fd, UniqueFd stop_fd, std::string address, const AgentMetrics& metrics);
  void Loop();

  UniqueFd listen_fd_, stop_fd_;
  std::string address_;
  const AgentMetrics& metrics_;
  std::thread thread_;
};

}  // namespace weft::agent
