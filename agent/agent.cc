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
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "agent/config_source.hpp"
#include "agent/datapath/kernel_map_writer.hpp"
#include "agent/datapath/tracking_map_writer.hpp"
#include "agent/metrics.hpp"
#include "agent/node_state.hpp"
#include "agent/policy/policy_datapath.hpp"
#include "agent/reconcile.hpp"
#include "config/names.hpp"
#include "weft/ip.hpp"
#include "weft/node/admin.hpp"
#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"
#include "weft/sys.hpp"
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

// The LB consumer of the node state: the services into the sock_lb maps,
// less the backends this node cannot serve (withheld: a local workload with
// no interface here, as the policy consumer placed it).
class LbConsumer : public NodeStateConsumer {
 public:
  LbConsumer(Reconciler& reconciler, AgentMetrics& metrics, std::mutex& state_mu,
             const policy::PolicyDatapath& policy)
      : reconciler_(reconciler), metrics_(metrics), state_mu_(state_mu), policy_(policy) {}
  const char* name() const override { return "socket LB"; }

  Status Apply(const NodeState& state, const NodeStateChange&, const std::string& why) override {
    auto t0 = Clock::now();
    // Not programmed: a backend this node cannot serve. A backend on another
    // node is load-balanced to (socket-LB connects across the fabric), but one
    // whose workload the controller places on this node and that has no
    // interface here (no pod yet, or an address routed elsewhere) would be
    // neither reachable nor under policy: withheld until it is placed
    // (docs/ARCHITECTURE.md), reported once and counted (weft_backends_withheld).
    const std::set<IpAddr>& withheld = policy_.unplaced_addresses();
    for (const IpAddr& a : withheld)
      if (!withheld_.count(a))
        spdlog::warn("backend address {}: its workload is on this node but has no interface here: withheld from "
                     "load balancing until it has one",
                     a.ToString());
    for (const IpAddr& a : withheld_)
      if (!withheld.count(a)) spdlog::info("backend address {}: its workload is placed: load-balanced again", a.ToString());
    withheld_ = withheld;
    size_t n_withheld = 0;
    std::optional<lb::DesiredState> filtered;
    if (!withheld.empty()) filtered = lb::WithoutBackends(state.services(), withheld, &n_withheld);
    metrics_.SetBackendsWithheld(n_withheld);
    // Under state_mu_: the metrics thread's topology builder reads the maps' mirror.
    auto st = [&] {
      std::lock_guard lk(state_mu_);
      return reconciler_.Apply(filtered ? *filtered : state.services());
    }();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    metrics_.RecordReconcile(secs, st.ok());
    if (!st.ok()) return st.status();
    metrics_.RecordMapWrites(st->entries_written());
    const auto& s = *st;
    spdlog::info("reconciled ({}) in {:.3f} ms: {} services in config, {} changed; services +{}/-{}, backends +{}/-{}, "
                 "slots +{}/-{}",
                 why, secs * 1e3, state.services().services.size(), s.services_changed, s.services.upserted,
                 s.services.deleted, s.backends.upserted, s.backends.deleted, s.slots.upserted, s.slots.deleted);
    return Status::Ok();
  }
  // The backends left out at the last apply.
  const std::set<IpAddr>& withheld() const { return withheld_; }

 private:
  Reconciler& reconciler_;
  AgentMetrics& metrics_;
  std::mutex& state_mu_;
  const policy::PolicyDatapath& policy_;
  std::set<IpAddr> withheld_;
};

// The identity-policy consumer: the policy part of the node state into the
// TC policy maps and links, in the pods' netns. Before the programs are
// attached (file mode applies its first state before attaching) it waits:
// Attach then applies it.
class PolicyConsumer : public NodeStateConsumer {
 public:
  PolicyConsumer(policy::PolicyDatapath& policy, std::string netns) : policy_(policy), netns_(std::move(netns)) {}
  const char* name() const override { return "identity policy"; }
  Status Apply(const NodeState& state, const NodeStateChange& change, const std::string&) override {
    if (!attached_) return Status::Ok();
    auto ns = sys::ScopedNetns::Enter(netns_);
    Status st = ns.ok() ? policy_.Apply(state.policy(), change.policy, state.version()) : ns.status();
    return st.ok() ? st : st.Wrap("identity policy");
  }
  // Interfaces that appeared or moved; silent when nothing changed.
  Status Refresh(const NodeState& state) {
    auto ns = sys::ScopedNetns::Enter(netns_);
    if (!ns.ok()) return ns.status();
    return policy_.Refresh(state.policy());
  }
  Status Attach() {
    auto ns = sys::ScopedNetns::Enter(netns_);
    if (!ns.ok()) return ns.status();
    WEFT_RETURN_IF_ERROR(policy_.Attach());
    attached_ = true;
    return Status::Ok();
  }

 private:
  policy::PolicyDatapath& policy_;
  std::string netns_;
  bool attached_ = false;
};

class Agent {
 public:
  Agent(const RunOptions& opts) : opts_(opts) {}
  int Main();

 private:
  Status Start();
  // Applies node_ to every consumer in order (policy, then LB); on failure
  // schedules a retry of the whole state if `retry`.
  Status ApplyState(const std::string& why, const NodeStateChange& change, bool retry);
  // One update from the source: converted into node_, applied, reported back;
  // a refused or failed push is reverted and the last good state re-applied.
  void Handle(ConfigUpdate& u);
  // Takes and applies every state the source has ready. False: fatal error.
  bool DrainSource();
  // What the admin endpoint answers (on its thread: constants and atomics only).
  node::AgentInfo Info() const;
  int Loop();

  const RunOptions& opts_;
  std::unique_ptr<datapath::Datapath> dp_;
  std::unique_ptr<policy::PolicyDatapath> policy_;
  std::unique_ptr<datapath::KernelMapWriter> kernel_writer_;
  std::unique_ptr<datapath::TrackingMapWriter> writer_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<datapath::KernelStatsReader> stats_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<MetricsServer> server_;
  std::unique_ptr<node::AdminServer> admin_;  // after metrics_ and server_: stopped before them
  std::unique_ptr<ConfigSource> source_;
  UniqueFd signal_fd_;

  // The node state: the last good one, or a push being applied. node_ and
  // the map writer's mirror change on the main thread under state_mu_; the
  // metrics thread takes it to build the topology on a scrape.
  NodeState node_;
  std::mutex state_mu_;
  std::unique_ptr<PolicyConsumer> policy_consumer_;
  std::unique_ptr<LbConsumer> lb_consumer_;
  // In the order they apply a state: a new pod is enforced before socket-LB
  // sends it traffic. (The node proxy comes after them.)
  std::vector<NodeStateConsumer*> consumers_;
  bool attached_ = false;                    // Start attached the programs
  bool applied_ok_ = false;                  // some config was applied: with attached_, /healthz is 200
  std::optional<Clock::time_point> retry_at_;  // a failed state is retried then
  std::chrono::milliseconds backoff_{500};
  Clock::time_point policy_refresh_at_{};
};

Status Agent::Start() {
  // The node name is a path component of the pins and the controller's key:
  // a DNS-1123 subdomain, as the controller requires in the hello.
  if (std::string why = config::CheckDns1123Subdomain(opts_.node); !why.empty())
    return Status::Error("--node \"" + opts_.node + "\": " + why, EINVAL);
  auto ranges = VipRanges::Parse(
      {opts_.service_cidr, opts_.service_cidr_v6, opts_.service_entry_cidr, opts_.service_entry_cidr_v6});
  if (!ranges.ok()) return ranges.status();
  node_ = NodeState(std::move(*ranges));
  // Signals are taken through a signalfd in the loop; block them before any
  // thread starts so that the metrics and controller threads inherit the mask.
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

  policy::PolicyOptions po;
  po.pin_root = opts_.pin_root;
  po.node = opts_.node;
  // File mode has no policy, so no names to publish.
  po.state_dir = opts_.controller.empty() ? "" : opts_.state_dir;
  {
    // Only this block runs in the pods' netns: the controller stream and the
    // metrics server below must stay in the agent's own.
    auto pns = sys::ScopedNetns::Enter(opts_.netns);
    if (!pns.ok()) return pns.status().Wrap("policy datapath");
    auto pdp = policy::PolicyDatapath::Load(po);
    if (!pdp.ok()) return pdp.status().Wrap("policy datapath");
    policy_ = std::move(*pdp);
  }

  stats_ = std::make_unique<datapath::KernelStatsReader>(dp_->skel());
  std::vector<AgentMetrics::MapCapacity> capacities;
  for (const auto& m : dp_->maps())
    if (m.max_entries > 0) capacities.push_back({m.name, m.max_entries});
  metrics_ = std::make_unique<AgentMetrics>(opts_.node, WEFT_VERSION, std::move(capacities), stats_.get());
  metrics_->Publish(BuildTopology(view, nullptr));
  metrics_->SetTopologyBuilder([this] {
    std::lock_guard lk(state_mu_);
    return BuildTopology(writer_->View(), &node_.services());
  });
  metrics_->SetPolicySource(policy_.get());

  policy_consumer_ = std::make_unique<PolicyConsumer>(*policy_, opts_.netns);
  lb_consumer_ = std::make_unique<LbConsumer>(*reconciler_, *metrics_, state_mu_, *policy_);
  consumers_ = {policy_consumer_.get(), lb_consumer_.get()};

  if (!opts_.controller.empty()) {
    ControllerSourceOptions co;
    co.address = opts_.controller;
    co.node = opts_.node;
    co.credentials_dir = opts_.credentials_dir.empty() ? node::StatePaths(opts_.state_dir, opts_.node).credentials
                                                       : opts_.credentials_dir;
    co.join_token_file = opts_.join_token_file;
    co.trust_domain = opts_.trust_domain;
    co.agent_version = WEFT_VERSION;
    co.capabilities = ProbeCapabilities(!opts_.no_batch);
    co.state_dir = opts_.state_dir;
    source_ = MakeControllerSource(std::move(co), *metrics_);
    spdlog::info("controller pushes: VIPs accepted in {}", node_.ranges().ToString());
  } else {
    source_ = MakeFileSource(opts_.config, *metrics_);
  }
  if (!opts_.metrics.empty()) {
    auto server = MetricsServer::Start(opts_.metrics, *metrics_);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    spdlog::info("metrics on http://{}/metrics", server_->address());
  }
  // The local admin endpoint (weft/node/admin.hpp): weftctl asks it where the
  // pins, the state and the pods are. Without it (logged) weftctl reads the
  // files: the data plane does not depend on it. (No state dir: none.)
  if (!opts_.state_dir.empty()) {
    const std::string sock = node::StatePaths(opts_.state_dir, opts_.node).admin_socket;
    auto admin = node::AdminServer::Start(sock, [this] { return Info(); });
    if (admin.ok()) {
      admin_ = std::move(*admin);
      spdlog::info("admin endpoint on {}", sock);
    } else {
      spdlog::warn("admin endpoint: {}; weftctl will read the node's files instead", admin.status().message());
    }
  }

  // File mode: the file's state is applied before the programs go in, so a
  // fresh node never runs its programs over empty maps when a valid config
  // exists. Controller mode: the programs go in over the adopted maps (empty
  // on a fresh node: VIP traffic is then not rewritten, as without an agent)
  // and the stream starts after the attach succeeded (NodeHello reports
  // bpf_link).
  WEFT_RETURN_IF_ERROR(source_->Open());
  if (!DrainSource()) return Status::Error("read " + source_->Describe());
  WEFT_RETURN_IF_ERROR(dp_->Attach());
  // Policy: the adopted interfaces get the new programs in place (no window
  // without policy), then the state decides. File mode has no policy: its
  // state's empty policy detaches every link (nothing enforced). Controller
  // mode has no state before the first push: the adopted maps stay.
  WEFT_RETURN_IF_ERROR(policy_consumer_->Attach().Wrap("policy datapath"));
  if (opts_.controller.empty())
    WEFT_RETURN_IF_ERROR(policy_consumer_->Apply(node_, NodeStateChange{}, "start")
                             .Wrap("policy datapath (file mode: no policy)"));
  attached_ = true;
  if (applied_ok_) metrics_->SetHealthy();
  WEFT_RETURN_IF_ERROR(source_->Start());
  return Status::Ok();
}

Status Agent::ApplyState(const std::string& why, const NodeStateChange& change, bool retry) {
  Status st;
  for (NodeStateConsumer* c : consumers_) {
    st = c->Apply(node_, change, why);
    if (!st.ok()) break;
  }
  metrics_->TopologyChanged();
  if (!st.ok()) {
    if (retry) {
      retry_at_ = Clock::now() + backoff_;
      LogLines(spdlog::level::err,
               "apply (" + why + ") failed, retrying in " + std::to_string(backoff_.count()) + " ms:", st.message());
      backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30000));
    } else {
      retry_at_.reset();
      LogLines(spdlog::level::err, "apply (" + why + ") failed:", st.message());
    }
    return st;
  }
  retry_at_.reset();
  backoff_ = std::chrono::milliseconds(500);
  metrics_->ConfigApplied();
  applied_ok_ = true;
  // Healthy once a config is in the maps and the programs are attached (file
  // mode applies its first config before attaching).
  if (attached_) metrics_->SetHealthy();
  return Status::Ok();
}

void Agent::Handle(ConfigUpdate& u) {
  // 1. Convert once: the push (or the file's services) into the node state.
  Result<NodeStateChange> change = NodeStateChange{};
  {
    std::lock_guard lk(state_mu_);
    if (u.snapshot) {
      change = node_.ApplySnapshot(*u.snapshot, u.version);
      if (!change.ok()) change = change.status().Wrap("convert snapshot");
    } else if (u.delta) {
      change = node_.ApplyDelta(*u.delta, u.version);
      if (!change.ok()) change = change.status().Wrap("convert delta");
    } else {
      change = node_.ReplaceServices(std::move(u.desired));
    }
  }
  if (!change.ok()) {  // refused: nothing changed (NACK)
    source_->Applied(u, change.status());
    return;
  }
  // 2. Every consumer, in order.
  Status st = ApplyState(u.why, *change, u.retry_on_failure);
  if (st.ok() || u.retry_on_failure) {
    // Applied; or, from a file, kept and retried with backoff (the file is the truth).
    std::lock_guard lk(state_mu_);
    node_.Commit();
  } else {
    // Refused by a consumer: every consumer goes back to the last good
    // state, the same way (the maps may hold part of the refused one), before
    // the NACK says the node keeps it. Nothing to go back to before the first
    // good state: the maps keep what they hold.
    {
      std::lock_guard lk(state_mu_);
      node_.Revert();
    }
    if (node_.has_good())
      ApplyState("rollback to controller version " + std::to_string(node_.version()), NodeStateChange{}, true);
  }
  source_->Applied(u, st);
}

bool Agent::DrainSource() {
  for (;;) {
    auto next = source_->Next(Clock::now());
    if (!next.ok()) {
      spdlog::error("{}: {}", source_->Describe(), next.status().message());
      return false;
    }
    if (!*next) return true;
    Handle(**next);
  }
}

int Agent::Loop() {
  for (;;) {
    auto now = Clock::now();
    int timeout = source_->TimeoutMs(now);
    if (retry_at_) {
      int r = static_cast<int>(
          std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(*retry_at_ - now).count() + 1));
      timeout = timeout < 0 ? r : std::min(timeout, r);
    }
    // Workloads whose interface did not exist yet: look again every second.
    if (policy_->has_unplaced()) timeout = timeout < 0 ? 1000 : std::min(timeout, 1000);
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {source_->fd(), POLLIN, 0}};
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      return 1;
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      while (read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
          source_->Reload();
        } else {
          spdlog::info("{}: exiting; pins and links stay, the data plane keeps working",
                       si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
          source_->Stop();
          return 0;
        }
      }
    }
    // A new state replaces a pending retry (ApplyState resets or re-arms it).
    if (!DrainSource()) return 1;
    now = Clock::now();
    if (retry_at_ && now >= *retry_at_) ApplyState("retry", NodeStateChange{}, true);
    if (policy_->has_unplaced() && now >= policy_refresh_at_) {
      Status st = policy_consumer_->Refresh(node_);
      if (!st.ok()) spdlog::warn("policy refresh: {}", st.message());
      policy_refresh_at_ = now + std::chrono::seconds(1);
      // A workload placed (or gone): its backends come back into the LB maps.
      if (st.ok() && policy_->unplaced_addresses() != lb_consumer_->withheld()) {
        if (Status lst = lb_consumer_->Apply(node_, NodeStateChange{}, "placement"); !lst.ok())
          LogLines(spdlog::level::err, "reconcile (placement) failed:", lst.message());
        metrics_->TopologyChanged();
      }
    }
  }
}

node::AgentInfo Agent::Info() const {
  node::AgentInfo i;
  i.node = opts_.node;
  i.pin_root = opts_.pin_root;
  i.state_dir = opts_.state_dir;
  std::error_code ec;
  i.netns = opts_.netns.empty() ? "" : std::filesystem::absolute(opts_.netns, ec).lexically_normal().string();
  i.pid = static_cast<uint64_t>(::getpid());
  i.agent_version = WEFT_VERSION;
  i.abi_version = WEFT_ABI_VERSION;
  i.names_schema = node::kNamesSchema;
  i.mode = opts_.controller.empty() ? "file" : "controller";
  i.source = opts_.controller.empty() ? opts_.config : opts_.controller;
  i.applied_version = metrics_->config_version();
  i.generation = metrics_->generation();
  i.healthy = metrics_->healthy();
  i.controller_connected = metrics_->controller_connected();
  i.metrics = server_ ? server_->address() : "";
  return i;
}

int Agent::Main() {
  std::string from = opts_.controller.empty() ? "config " + opts_.config : "controller " + opts_.controller;
  spdlog::info("weft-agent {} starting: node {}, cgroup {}, {}, pins under {}/{}", WEFT_VERSION, opts_.node,
               opts_.cgroup, from, opts_.pin_root, opts_.node);
  if (Status st = Start(); !st.ok()) {
    LogLines(spdlog::level::critical, "start failed:", st.message());
    if (source_) source_->Stop();
    return 1;
  }
  spdlog::info("running: {} links attached, {}", dp_->links().size(),
               opts_.controller.empty() ? "watching " + opts_.config : "streaming from controller " + opts_.controller);
  int rc = Loop();
  source_->Stop();
  return rc;
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

int Cleanup(const std::string& pin_root, const std::string& node, const std::string& state_dir,
            const std::string& netns) {
  datapath::InstallLibbpfLogging(false);
  // Policy first: its filters are found through the pinned weft_endpoints
  // map, which datapath::Cleanup unpins. In the pods' netns; a netns that is
  // gone took its interfaces (and their filters) with it: CleanupPolicy then
  // only unpins (it touches no filter that is not ours).
  std::string ns = netns;
  if (!ns.empty() && ::access(ns.c_str(), F_OK) != 0) {
    spdlog::info("cleanup: network namespace {} is gone (its interfaces and filters with it)", ns);
    ns.clear();
  }
  auto guard = sys::ScopedNetns::Enter(ns);
  if (!guard.ok()) {
    spdlog::critical("cleanup failed: {}", guard.status().message());
    return 1;
  }
  auto pr = policy::CleanupPolicy(pin_root, node);
  if (!pr.ok()) {
    spdlog::critical("cleanup failed: {}", pr.status().message());
    return 1;
  }
  for (const auto& p : pr->removed) spdlog::info("cleanup: removed {}", p);
  if (!state_dir.empty()) {
    const node::StatePaths sp(state_dir, node);
    for (const std::string& path : {sp.names, sp.applied}) {
      if (::unlink(path.c_str()) == 0) spdlog::info("cleanup: removed {}", path);
    }
    // A socket left by an agent that was killed (a live one still answers: left alone).
    if (::access(sp.admin_socket.c_str(), F_OK) == 0) {
      if (Status st = node::RemoveStaleSocket(sp.admin_socket); st.ok())
        spdlog::info("cleanup: removed {}", sp.admin_socket);
      else
        spdlog::warn("cleanup: {}", st.message());
    }
    ::rmdir(sp.dir.c_str());
  }
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
