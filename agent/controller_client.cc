#include "agent/controller_client.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "agent/applied_state.hpp"
#include "agent/config_source.hpp"
#include "agent/metrics.hpp"
#include "agent/node_credentials.hpp"
#include "weft/transport.hpp"

namespace weft::agent {

// ---- Backoff ----

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max)
    : min_(min), max_(std::max(min, max)), rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::Next() {
  double base = static_cast<double>(min_.count());
  for (int i = 0; i < attempt_ && base < static_cast<double>(max_.count()); ++i) base *= 2;
  ++attempt_;
  double jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng_);
  auto ms = static_cast<int64_t>(base * jitter);
  return std::clamp(std::chrono::milliseconds(ms), min_, max_);
}

// ---- ControllerClient ----

namespace {

std::string StatusText(const grpc::Status& st) {
  static const char* const kCodes[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int code = static_cast<int>(st.error_code());
  std::string name = code >= 0 && code < static_cast<int>(std::size(kCodes)) ? kCodes[code] : std::to_string(code);
  return st.error_message().empty() ? name : name + ": " + st.error_message();
}

}  // namespace

ControllerClient::ControllerClient(std::string address, Connector connect, v1::NodeHello hello,
                                   std::chrono::milliseconds backoff_min, std::chrono::milliseconds backoff_max)
    : address_(std::move(address)),
      connect_(std::move(connect)),
      hello_(std::move(hello)),
      backoff_(backoff_min, backoff_max),
      event_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Result<std::unique_ptr<ControllerClient>> ControllerClient::Create(const std::string& address, Connector connect,
                                                                   v1::NodeHello hello,
                                                                   std::chrono::milliseconds backoff_min,
                                                                   std::chrono::milliseconds backoff_max) {
  auto c = std::make_unique<ControllerClient>(address, std::move(connect), std::move(hello), backoff_min, backoff_max);
  if (!c->event_fd_) return Status::Errno("controller client: eventfd", errno);
  return c;
}

ControllerClient::~ControllerClient() { Stop(); }

void ControllerClient::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void ControllerClient::Stop() {
  {
    std::lock_guard lk(state_mu_);
    stopping_ = true;
    if (ctx_) ctx_->TryCancel();
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControllerClient::Push(Event ev) {
  {
    std::lock_guard lk(queue_mu_);
    queue_.push_back(std::move(ev));
  }
  uint64_t one = 1;
  (void)!write(event_fd_.get(), &one, sizeof(one));
}

std::vector<ControllerClient::Event> ControllerClient::Drain() {
  uint64_t n;
  (void)!read(event_fd_.get(), &n, sizeof(n));
  std::lock_guard lk(queue_mu_);
  std::vector<Event> out(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

bool ControllerClient::Send(uint64_t epoch, const v1::AgentMessage& msg) {
  std::lock_guard lk(write_mu_);
  if (!stream_ || stream_epoch_ != epoch) return false;
  return stream_->Write(msg);
}

void ControllerClient::Run() {
  uint64_t epoch = 0;
  int failures = 0;  // attempts in a row that got no message
  while (!stub_) {
    auto ch = connect_();
    if (ch.ok()) {
      channel_ = std::move(*ch);
      stub_ = v1::ConfigDiscovery::NewStub(channel_);
      break;
    }
    if (ch.status().err() == EACCES) {
      Push({Event::kFatal, 0, {}, ch.status().message()});
      return;
    }
    if (failures++ == 0)
      spdlog::warn("controller {}: {}; retrying with backoff", address_, ch.status().message());
    else
      spdlog::debug("controller {}: attempt {}: {}", address_, failures, ch.status().message());
    if (!WaitBeforeRetry(backoff_.Next())) return;
  }
  failures = 0;
  backoff_.Reset();
  for (;;) {
    grpc::ClientContext ctx;  // no deadline: keepalive (transport::Dial) notices a dead controller
    {
      std::lock_guard lk(state_mu_);
      if (stopping_) return;
      ctx_ = &ctx;
    }
    auto stream = stub_->Stream(&ctx);
    ++epoch;
    v1::AgentMessage hello;
    {
      std::lock_guard lk(applied_mu_);
      *hello.mutable_hello() = hello_;
    }
    bool got_message = false;
    if (stream->Write(hello)) {
      {
        std::lock_guard lk(write_mu_);
        stream_ = stream.get();
        stream_epoch_ = epoch;
      }
      v1::ControllerMessage m;
      while (stream->Read(&m)) {
        if (!got_message) {
          got_message = true;
          failures = 0;
          backoff_.Reset();
          Push({Event::kConnected, epoch, {}, {}});
        }
        Push({Event::kMessage, epoch, std::move(m), {}});
        m.Clear();
      }
      std::lock_guard lk(write_mu_);  // waits for a Write in progress; none after this
      stream_ = nullptr;
    }
    grpc::Status st = stream->Finish();
    {
      std::lock_guard lk(state_mu_);
      ctx_ = nullptr;
      if (stopping_) return;
    }
    std::string why = st.ok() ? "the controller closed the stream" : StatusText(st);
    if (got_message) {
      Push({Event::kDisconnected, epoch, {}, why});
    } else if (failures++ == 0) {
      spdlog::warn("controller {}: stream failed before any config: {}; retrying with backoff", address_, why);
    } else {
      spdlog::debug("controller {}: attempt {} failed: {}", address_, failures, why);
    }
    if (!WaitBeforeRetry(backoff_.Next())) return;
  }
}

bool ControllerClient::WaitBeforeRetry(std::chrono::milliseconds delay) {
  // A synchronous gRPC client makes progress only while a thread polls the
  // channel; otherwise only gRPC's backup poller runs, every 5 s, and a TLS
  // handshake needs several round trips: a restarted controller took 20 s and
  // more to be reached. So the backoff waits on the channel itself (asking it
  // to connect), and ends early once it is READY.
  const auto until = std::chrono::steady_clock::now() + delay;
  for (;;) {
    {
      std::lock_guard lk(state_mu_);
      if (stopping_) return false;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    if (!channel_) {
      std::unique_lock lk(state_mu_);
      if (stop_cv_.wait_for(lk, until - now, [&] { return stopping_; })) return false;
      return true;
    }
    grpc_connectivity_state st = channel_->GetState(/*try_to_connect=*/true);
    if (st == GRPC_CHANNEL_READY) return true;
    auto slice = std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(100));
    channel_->WaitForStateChange(st, std::chrono::system_clock::now() + slice);
  }
}

// ---- ControllerSource: the ACK/NACK state machine over the stream ----

namespace {

class ControllerSource : public ConfigSource {
 public:
  ControllerSource(ControllerSourceOptions opts, AgentMetrics& metrics) : opts_(std::move(opts)), metrics_(metrics) {}
  ~ControllerSource() override { Stop(); }

  std::string Describe() const override { return "controller " + opts_.address; }

  Status Open() override {
    if (!opts_.state_dir.empty()) {
      applied_path_ = AppliedPath(opts_.state_dir, opts_.node);
      auto applied = LoadApplied(applied_path_);
      if (!applied.ok()) return applied.status();
      applied_ = *applied;
    }
    v1::NodeHello hello;
    hello.set_node(opts_.node);
    hello.set_agent_version(opts_.agent_version);
    if (applied_) {
      hello.set_applied_version(applied_->version);
      hello.set_store_id(applied_->store_id);
      spdlog::info("{}: this node has applied version {} of controller store {}", applied_path_, applied_->version,
                   applied_->store_id.empty() ? "(none)" : applied_->store_id);
    }
    auto* caps = hello.mutable_capabilities();
    caps->set_kernel_release(opts_.capabilities.kernel_release);
    caps->set_bpf_link(opts_.capabilities.bpf_link);
    caps->set_sk_storage(opts_.capabilities.sk_storage);
    caps->set_map_batch_ops(opts_.capabilities.map_batch_ops);
    caps->set_ktls(opts_.capabilities.ktls);
    ControllerClient::Connector connect;
    const std::string address = opts_.address;
    if (auto t = transport::GrpcTarget(address); !t.ok()) return t.status();
    if (transport::IsUnixAddress(address)) {  // the root-only socket: no certificates
      connect = [address] { return transport::Dial(address); };
    } else {
      NodeCredentialsOptions no;
      no.controller = address;
      no.node = opts_.node;
      no.trust_domain = opts_.trust_domain;
      no.dir = opts_.credentials_dir;
      no.join_token_file = opts_.join_token_file;
      auto creds = NodeCredentials::Open(std::move(no));
      if (!creds.ok()) return creds.status();
      creds_ = std::move(*creds);
      connect = [address, c = creds_.get()]() -> Result<std::shared_ptr<grpc::Channel>> {
        if (!c->ready()) WEFT_RETURN_IF_ERROR(c->Join());
        c->StartRenewal();
        return transport::Dial(address, c->ChannelCredentials());
      };
    }
    auto client = ControllerClient::Create(opts_.address, std::move(connect), std::move(hello), opts_.backoff_min,
                                           opts_.backoff_max);
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
    metrics_.EnableControllerMetrics();
    return Status::Ok();
  }

  Status Start() override {
    const auto& c = opts_.capabilities;
    spdlog::info("controller {}: connecting (kernel {}, bpf_link {}, sk_storage {}, map batch ops {}, ktls {})",
                 opts_.address, c.kernel_release, c.bpf_link, c.sk_storage, c.map_batch_ops, c.ktls);
    client_->Start();
    return Status::Ok();
  }

  int fd() const override { return client_->fd(); }
  int TimeoutMs(Clock::time_point) const override { return -1; }

  Result<std::optional<ConfigUpdate>> Next(Clock::time_point) override {
    if (events_.empty())
      for (auto& ev : client_->Drain()) events_.push_back(std::move(ev));
    while (!events_.empty()) {
      ControllerClient::Event ev = std::move(events_.front());
      events_.pop_front();
      switch (ev.kind) {
        case ControllerClient::Event::kConnected:
          epoch_ = ev.epoch;
          metrics_.SetControllerConnected(true);
          spdlog::info("controller {}: connected (stream {})", opts_.address, ev.epoch);
          break;
        case ControllerClient::Event::kDisconnected:
          if (ev.epoch == epoch_) metrics_.SetControllerConnected(false);
          spdlog::warn("controller {}: stream {} ended: {}; the maps keep {}; reconnecting with backoff",
                       opts_.address, ev.epoch, ev.error,
                       has_good_ ? "version " + std::to_string(good_version_) : std::string("what they hold"));
          break;
        case ControllerClient::Event::kMessage:
          if (auto u = Handle(ev)) return u;
          break;
        case ControllerClient::Event::kFatal:
          return Status::Error(ev.error, EACCES);
      }
    }
    return std::optional<ConfigUpdate>();
  }

  void Applied(const ConfigUpdate&, const Status& result) override {
    if (!inflight_) return;
    Inflight f = std::move(*inflight_);
    inflight_.reset();
    if (result.ok()) {
      has_good_ = true;
      good_version_ = f.version;
      good_store_ = f.store_id;
      client_->SetApplied(f.version, f.store_id);
      metrics_.SetConfigVersion(f.version);
      AppliedVersion now{f.store_id, f.version};
      if (!applied_ || *applied_ != now) {
        if (applied_ && applied_->store_id != now.store_id)
          spdlog::warn("controller store changed from {} (version {}) to {} (version {}): a reset, applied",
                       applied_->store_id.empty() ? "(none)" : applied_->store_id, applied_->version,
                       now.store_id.empty() ? "(none)" : now.store_id, now.version);
        applied_ = now;
        if (!applied_path_.empty())
          if (Status st = SaveApplied(applied_path_, now); !st.ok())
            spdlog::error("record the applied version: {}; after a restart this node accepts any version", st.message());
      }
      v1::AgentMessage m;
      m.mutable_ack()->set_version(f.version);
      m.mutable_ack()->set_nonce(f.nonce);
      bool sent = client_->Send(f.epoch, m);
      spdlog::info("controller version {} (nonce {}) applied: ACK{}", f.version, f.nonce,
                   sent ? "" : " not sent (stream gone)");
      return;
    }
    // The agent takes the node state back to the last good one.
    Nack(f.epoch, f.version, f.nonce, result.message());
  }

  void Stop() override {
    if (client_) client_->Stop();
    creds_.reset();  // stops the renewal thread
  }

 private:
  struct Inflight {
    uint64_t version = 0;
    std::string nonce;
    uint64_t epoch = 0;
    std::string store_id;
  };

  // A push -> the update to apply, or a NACK (nullopt) if it cannot be used
  // here whatever it holds: a version that goes back, a delta onto another
  // version than this node's. The agent converts what it can use into its
  // node state (agent/node_state.hpp) and reports back through Applied.
  std::optional<ConfigUpdate> Handle(ControllerClient::Event& ev) {
    v1::ControllerMessage& m = ev.msg;
    // Versions never go back within one store (applied_state.hpp).
    if (std::string why = CheckMonotonic(applied_, m.store_id(), m.version(), applied_path_); !why.empty()) {
      Nack(ev.epoch, m.version(), m.nonce(), why);
      return std::nullopt;
    }
    // A delta applies only onto the version it was computed for: after a
    // rejected push the config here is not that version's (truthful status).
    if (m.has_delta()) {
      std::string why;
      if (!has_good_)
        why = "a delta before any snapshot was applied";
      else if (!m.has_base_version())
        why = "a delta without a base version";
      else if (m.store_id() != good_store_)
        why = "a delta of store " + m.store_id() + " onto a config of store " + good_store_;
      else if (m.base_version() != good_version_)
        why = "a delta onto version " + std::to_string(m.base_version()) + ", but this node's config is version " +
              std::to_string(good_version_) + " (a push in between was not applied)";
      if (!why.empty()) {
        Nack(ev.epoch, m.version(), m.nonce(), why + ": nothing changed; waiting for a full snapshot");
        return std::nullopt;
      }
    } else if (!m.has_snapshot()) {
      Nack(ev.epoch, m.version(), m.nonce(), "message has neither a snapshot nor a delta");
      return std::nullopt;
    }
    ConfigUpdate u;
    u.why = std::string("controller ") + (m.has_snapshot() ? "snapshot" : "delta") + " version " +
            std::to_string(m.version());
    u.retry_on_failure = false;
    u.version = m.version();
    // Moved: the event is done.
    if (m.has_snapshot())
      u.snapshot = std::make_shared<const v1::NodeConfig>(std::move(*m.mutable_snapshot()));
    else
      u.delta = std::make_shared<const v1::NodeConfigDelta>(std::move(*m.mutable_delta()));
    inflight_ = Inflight{m.version(), m.nonce(), ev.epoch, m.store_id()};
    return u;
  }

  void Nack(uint64_t epoch, uint64_t version, const std::string& nonce, const std::string& error) {
    metrics_.ConfigNack();
    v1::AgentMessage m;
    m.mutable_nack()->set_version(version);
    m.mutable_nack()->set_nonce(nonce);
    m.mutable_nack()->set_error(error);
    bool sent = client_->Send(epoch, m);
    spdlog::error("controller version {} (nonce {}) rejected: NACK{}; keeping {}: {}", version, nonce,
                  sent ? "" : " not sent (stream gone)",
                  has_good_ ? "version " + std::to_string(good_version_) : std::string("what the maps hold"), error);
  }

  ControllerSourceOptions opts_;
  AgentMetrics& metrics_;
  std::unique_ptr<NodeCredentials> creds_;  // TCP: the node's identity (outlives client_'s thread)
  std::unique_ptr<ControllerClient> client_;
  std::deque<ControllerClient::Event> events_;
  uint64_t epoch_ = 0;                 // stream of the last Connected event
  bool has_good_ = false;               // a push was applied (good_version_ of good_store_)
  uint64_t good_version_ = 0;
  std::string good_store_;
  std::string applied_path_;            // <state-dir>/<node>/applied.json ("" without a state dir)
  std::optional<AppliedVersion> applied_;  // the last version ACKed, this run or an earlier one
  std::optional<Inflight> inflight_;   // handed out by Next, awaiting Applied
};

bool KtlsAvailable(const std::string& release) {
  std::ifstream ulp("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string word;
  while (ulp >> word)
    if (word == "tls") return true;
  std::error_code ec;
  if (std::filesystem::exists("/sys/module/tls", ec)) return true;  // loaded (or built in)
  return !release.empty() && std::filesystem::exists("/lib/modules/" + release + "/kernel/net/tls", ec);
}

}  // namespace

NodeCapabilities ProbeCapabilities(bool batch_enabled) {
  NodeCapabilities c;
  utsname u{};
  if (uname(&u) == 0) c.kernel_release = u.release;
  c.bpf_link = true;
  c.sk_storage = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr) == 1;
  if (batch_enabled) {
    // A one-element hash map and one batch update: what the KernelMapWriter
    // will try first on every LB map (it falls back per map if refused).
    UniqueFd m(bpf_map_create(BPF_MAP_TYPE_HASH, "weft_probe_bat", 4, 4, 1, nullptr));
    if (m) {
      uint32_t key = 1, val = 1;
      __u32 count = 1;
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      c.map_batch_ops = bpf_map_update_batch(m.get(), &key, &val, &count, &opts) == 0;
    }
  }
  c.ktls = KtlsAvailable(c.kernel_release);
  return c;
}

std::unique_ptr<ConfigSource> MakeControllerSource(ControllerSourceOptions opts, AgentMetrics& metrics) {
  return std::make_unique<ControllerSource>(std::move(opts), metrics);
}

}  // namespace weft::agent
