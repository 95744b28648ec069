#include "agent/agent.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>

#include "agent/config/loader.hpp"
#include "agent/datapath/kernel_map_writer.hpp"
#include "agent/datapath/tracking_map_writer.hpp"
#include "agent/file_watch.hpp"
#include "agent/lb/compile.hpp"
#include "agent/metrics.hpp"
#include "agent/reconcile.hpp"
#include "weft/ip.hpp"
#include "weft/unique_fd.hpp"

#ifndef WEFT_VERSION
#define WEFT_VERSION "dev"
#endif

namespace weft::agent {

namespace {

using Clock = std::chrono::steady_clock;

// Logs every line of a (possibly multi-line) message at `level`, so each
// "file:line:col: ..." error gets its own timestamped line.
void LogLines(spdlog::level::level_enum level, const std::string& head, const std::string& body) {
  spdlog::log(level, "{}", head);
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) spdlog::log(level, "  {}", line);
}

std::string AddrPort(const uint8_t addr[16], uint16_t port_be) {
  IpAddr ip = IpAddr::FromBytes(addr);
  std::string a = ip.is_v4() ? ip.ToString() : "[" + ip.ToString() + "]";
  return a + ":" + std::to_string(ntohs(port_be));
}

std::shared_ptr<const MetricsTopology> BuildTopology(const datapath::MapView& view, const lb::DesiredState* desired) {
  auto t = std::make_shared<MetricsTopology>();
  for (const auto& [k, v] : view.services) {
    MetricsTopology::Service s;
    s.id = v.svc_id;
    s.vip = IpAddr::FromBytes(k.addr).ToString();
    s.port = ntohs(k.port);
    s.proto = k.proto == IPPROTO_UDP ? "udp" : k.proto == IPPROTO_TCP ? "tcp" : std::to_string(k.proto);
    if (desired) {
      auto it = desired->services.find(k);
      // ServiceEntry::name is "namespace/name:port-name": the label is "namespace/name".
      if (it != desired->services.end()) s.service = it->second.name.substr(0, it->second.name.find(':'));
    }
    t->services.push_back(std::move(s));
  }
  for (const auto& [id, b] : view.backends) t->backends.push_back({id, AddrPort(b.addr, b.port)});
  t->entries = {{WEFT_MAP_SERVICES, view.services.size()},
                {WEFT_MAP_BACKENDS, view.backends.size()},
                {WEFT_MAP_SLOTS, view.slots}};
  return t;
}

class Agent {
 public:
  Agent(const RunOptions& opts) : opts_(opts) {}
  int Main();

 private:
  Status Start();
  // Loads, validates and compiles the config; on error logs it, counts it and
  // returns nullopt (the last good state stays in the maps).
  std::optional<lb::DesiredState> LoadDesired();
  // Applies `desired_`; on failure schedules a retry.
  bool ApplyDesired(const char* why);
  int Loop();

  const RunOptions& opts_;
  std::unique_ptr<datapath::Datapath> dp_;
  std::unique_ptr<datapath::KernelMapWriter> kernel_writer_;
  std::unique_ptr<datapath::TrackingMapWriter> writer_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<datapath::KernelStatsReader> stats_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<MetricsServer> server_;
  std::optional<FileWatch> watch_;
  UniqueFd signal_fd_;

  std::optional<lb::DesiredState> desired_;  // last valid config, compiled
  bool applied_ = false;                     // desired_ is in the maps
  std::optional<Clock::time_point> retry_at_;
  std::chrono::milliseconds backoff_{500};
};

Status Agent::Start() {
  // Signals are taken through a signalfd in the loop; block them before any
  // thread starts so that the metrics thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return Status::Error("block signals");
  signal_fd_.reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return Status::Errno("signalfd", errno);
  signal(SIGPIPE, SIG_IGN);

  datapath::InstallLibbpfLogging(opts_.verbose);
  datapath::LoaderOptions lo;
  lo.pin_root = opts_.pin_root;
  lo.node = opts_.node;
  lo.cgroup = opts_.cgroup;
  lo.capacities = opts_.capacities;
  auto dp = datapath::Datapath::Load(lo);
  if (!dp.ok()) return dp.status();
  dp_ = std::move(*dp);

  kernel_writer_ = std::make_unique<datapath::KernelMapWriter>(
      dp_->skel(), opts_.no_batch ? datapath::BatchMode::kOff : datapath::BatchMode::kAuto);
  writer_ = std::make_unique<datapath::TrackingMapWriter>(*kernel_writer_);
  auto caps = dp_->capacities();
  ReconcileLimits limits;
  limits.max_services = std::min(caps.services, caps.svc_stats);
  limits.max_backends = std::min(caps.backends, caps.be_stats);
  limits.max_slots = caps.slots;
  reconciler_ = std::make_unique<Reconciler>(*writer_, limits);
  auto t0 = Clock::now();
  WEFT_RETURN_IF_ERROR(reconciler_->Adopt().Wrap("adopt the pinned maps"));
  auto view = writer_->View();
  spdlog::info("adopted maps in {} ms: {} services, {} backends, {} slots",
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(),
               view.services.size(), view.backends.size(), view.slots);

  stats_ = std::make_unique<datapath::KernelStatsReader>(dp_->skel());
  std::vector<AgentMetrics::MapCapacity> capacities;
  for (const auto& m : dp_->maps())
    if (m.max_entries > 0) capacities.push_back({m.name, m.max_entries});
  metrics_ = std::make_unique<AgentMetrics>(opts_.node, WEFT_VERSION, std::move(capacities), stats_.get());
  metrics_->Publish(BuildTopology(view, nullptr));
  if (!opts_.metrics.empty()) {
    auto server = MetricsServer::Start(opts_.metrics, *metrics_);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    spdlog::info("metrics on http://{}/metrics", server_->address());
  }

  // Watch before the first load: a change written between the load and the
  // watch would otherwise be missed.
  auto watch = FileWatch::Create(opts_.config);
  if (!watch.ok()) return watch.status();
  watch_.emplace(std::move(*watch));

  desired_ = LoadDesired();
  if (desired_) ApplyDesired("start");
  // Programs go in after the maps hold the config: a fresh node never runs
  // its programs over empty maps when a valid config exists.
  WEFT_RETURN_IF_ERROR(dp_->Attach());
  return Status::Ok();
}

std::optional<lb::DesiredState> Agent::LoadDesired() {
  auto cfg = config::LoadConfigFile(opts_.config);
  if (!cfg.ok()) {
    metrics_->ConfigError();
    LogLines(spdlog::level::err,
             "config " + opts_.config + " rejected, keeping the last good state" +
                 (desired_ ? "" : " (none yet: the maps keep what they hold)") + ":",
             cfg.status().message());
    return std::nullopt;
  }
  return lb::Compile(*cfg, {});
}

bool Agent::ApplyDesired(const char* why) {
  auto t0 = Clock::now();
  auto st = reconciler_->Apply(*desired_);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  metrics_->RecordReconcile(secs, st.ok());
  if (!st.ok()) {
    applied_ = false;
    retry_at_ = Clock::now() + backoff_;
    LogLines(spdlog::level::err,
             "reconcile (" + std::string(why) + ") failed, retrying in " + std::to_string(backoff_.count()) + " ms:",
             st.status().message());
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30000));
    metrics_->Publish(BuildTopology(writer_->View(), &*desired_));
    return false;
  }
  applied_ = true;
  retry_at_.reset();
  backoff_ = std::chrono::milliseconds(500);
  metrics_->ConfigApplied();
  metrics_->SetHealthy();
  metrics_->Publish(BuildTopology(writer_->View(), &*desired_));
  const auto& s = *st;
  spdlog::info("reconciled ({}) in {:.3f} ms: {} services in config, {} changed; services +{}/-{}, backends +{}/-{}, "
               "slots +{}/-{}",
               why, secs * 1e3, desired_->services.size(), s.services_changed, s.services.upserted,
               s.services.deleted, s.backends.upserted, s.backends.deleted, s.slots.upserted, s.slots.deleted);
  return true;
}

int Agent::Loop() {
  Debouncer debounce;
  for (;;) {
    auto now = Clock::now();
    int timeout = debounce.TimeoutMs(now);
    if (retry_at_) {
      int r = static_cast<int>(
          std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(*retry_at_ - now).count() + 1));
      timeout = timeout < 0 ? r : std::min(timeout, r);
    }
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {watch_->fd(), POLLIN, 0}};
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      return 1;
    }
    now = Clock::now();
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      while (read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
          spdlog::info("SIGHUP: reloading {}", opts_.config);
          debounce.Event(now - std::chrono::hours(1));  // due at once
        } else {
          spdlog::info("{}: exiting; pins and links stay, the data plane keeps working",
                       si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
          return 0;
        }
      }
    }
    if (n > 0 && (fds[1].revents & POLLIN)) {
      auto changed = watch_->Drain();
      if (!changed.ok()) {
        spdlog::error("{}", changed.status().message());
        return 1;
      }
      if (*changed) debounce.Event(now);
    }
    if (debounce.Due(now)) {
      spdlog::info("config {} changed: reloading", opts_.config);
      if (auto d = LoadDesired()) {
        desired_ = std::move(d);
        ApplyDesired("config change");
      }
    } else if (retry_at_ && now >= *retry_at_ && desired_) {
      ApplyDesired("retry");
    }
  }
}

int Agent::Main() {
  spdlog::info("weft-agent {} starting: node {}, cgroup {}, config {}, pins under {}/{}", WEFT_VERSION, opts_.node,
               opts_.cgroup, opts_.config, opts_.pin_root, opts_.node);
  if (Status st = Start(); !st.ok()) {
    LogLines(spdlog::level::critical, "start failed:", st.message());
    return 1;
  }
  spdlog::info("running: {} links attached, watching {}", dp_->links().size(), opts_.config);
  return Loop();
}

}  // namespace

void SetUpLogging(bool verbose) {
  auto logger = std::make_shared<spdlog::logger>("weft-agent", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);  // line by line: stderr may be a file read by tests and supervisors
  spdlog::set_default_logger(std::move(logger));
}

int Run(const RunOptions& opts) { return Agent(opts).Main(); }

int Cleanup(const std::string& pin_root, const std::string& node) {
  datapath::InstallLibbpfLogging(false);
  auto r = datapath::Cleanup(pin_root, node);
  if (!r.ok()) {
    spdlog::critical("cleanup failed: {}", r.status().message());
    return 1;
  }
  if (r->nothing_to_do()) {
    spdlog::info("cleanup: nothing to do for node {} (no pins under {}/{})", node, pin_root, node);
    return 0;
  }
  for (const auto& p : r->removed) spdlog::info("cleanup: removed {}", p);
  spdlog::info("cleanup: node {} removed ({} pins and directories); its programs are detached", node,
               r->removed.size());
  return 0;
}

}  // namespace weft::agent
