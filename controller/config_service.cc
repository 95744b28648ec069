#include "controller/config_service.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <optional>
#include <random>
#include <thread>

#include "config/names.hpp"
#include "controller/compile_policy.hpp"
#include "weft/v1/config.grpc.pb.h"

namespace weft::controller {

using weft::v1::AgentMessage;
using weft::v1::ControllerMessage;

namespace {

// A refcounted gRPC slice over a string that is never copied: every stream's
// ByteBuffer references the same bytes; they are freed with the last reference.
grpc::Slice SharedSlice(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  return grpc::Slice(owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Wire format of ControllerMessage (config.proto): version = 1 (varint),
// nonce = 2 (bytes), snapshot = 3 / delta = 4 (message). A message body may
// be the concatenation of two serialized parts of the same type: protobuf
// parses concatenated encodings as their merge (repeated fields append).
constexpr uint32_t kVersionTag = (1 << 3) | 0;
constexpr uint32_t kNonceTag = (2 << 3) | 2;
constexpr uint32_t kSnapshotTag = (3 << 3) | 2;
constexpr uint32_t kDeltaTag = (4 << 3) | 2;
constexpr uint32_t kStoreIdTag = (5 << 3) | 2;
constexpr uint32_t kBaseVersionTag = (6 << 3) | 0;

// The header of every push (everything but the body).
struct PushHead {
  uint64_t version = 0;
  const std::string* nonce = nullptr;
  const std::string* store_id = nullptr;
  std::optional<uint64_t> base_version;  // deltas
};

// One push: ControllerMessage{version, nonce, store_id, [base_version], body =
// shared + own}. `shared` is referenced, not copied; `own` (the node's part)
// is small.
grpc::ByteBuffer Frame(const PushHead& h, uint32_t body_tag, const grpc::Slice* shared, const std::string& own) {
  std::string head;
  PutVarint(head, kVersionTag);
  PutVarint(head, h.version);
  PutVarint(head, kNonceTag);
  PutVarint(head, h.nonce->size());
  head += *h.nonce;
  PutVarint(head, kStoreIdTag);
  PutVarint(head, h.store_id->size());
  head += *h.store_id;
  if (h.base_version) {
    PutVarint(head, kBaseVersionTag);
    PutVarint(head, *h.base_version);
  }
  PutVarint(head, body_tag);
  PutVarint(head, (shared ? shared->size() : 0) + own.size());
  if (!shared || shared->size() == 0) {  // a small push: one slice
    head += own;
    grpc::Slice one(head);
    return grpc::ByteBuffer(&one, 1);
  }
  grpc::Slice parts[3] = {grpc::Slice(head), *shared, grpc::Slice(own)};
  size_t n = own.empty() ? 2 : 3;
  return grpc::ByteBuffer(parts, n);
}

}  // namespace

// Raw (ByteBuffer) callback service: pushes are framed by hand (Frame) so
// that the part every node shares (the whole service table, the mesh-wide
// identity tables) is serialized once per version and referenced by every
// stream, instead of copied and serialized once per stream.
using RawConfigDiscovery =
    weft::v1::ConfigDiscovery::WithRawCallbackMethod_Stream<weft::v1::ConfigDiscovery::Service>;

struct ConfigHub::Impl : public RawConfigDiscovery {
  explicit Impl(ConfigHub* h, NodeRegistry& n, CompilerOptions opts, HubOptions ho)
      : hub(h), nodes(n), options(std::move(ho)), compiler(std::move(opts)) {
    std::random_device rd;
    nonce_prefix = (uint64_t{rd()} << 32) | rd();
    reaper = std::thread([this] { ReapSilentStreams(); });
  }
  ~Impl() override {
    {
      std::lock_guard lock(sessions_mu);
      reaper_stop = true;
    }
    reaper_cv.notify_all();
    if (reaper.joinable()) reaper.join();
  }
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(grpc::CallbackServerContext* ctx) override;

  std::string NextNonce() {
    char buf[48];
    snprintf(buf, sizeof buf, "%016llx-%llu", static_cast<unsigned long long>(nonce_prefix),
             static_cast<unsigned long long>(++nonce_seq));
    return buf;
  }
  // Registers `s` as the stream of its node and queues its snapshot.
  void Hello(Session* s, const weft::v1::NodeHello& hello);
  void Detach(Session* s);
  // A node's snapshot at the current version. Takes `mu` shared (or the
  // caller holds it): builds the shared part once per version.
  grpc::ByteBuffer SnapshotFrame(const std::string& node, const std::string& nonce);
  // Closes streams that said no hello within options.hello_timeout (thread `reaper`).
  void ReapSilentStreams();

  ConfigHub* hub;
  NodeRegistry& nodes;
  const HubOptions options;
  std::atomic<size_t> open_streams{0};  // Session objects alive
  uint64_t nonce_prefix = 0;
  std::atomic<uint64_t> nonce_seq{0};
  std::atomic<uint64_t> session_seq{0};

  mutable std::shared_mutex mu;  // compiler + version
  Compiler compiler;
  uint64_t version = 0;
  // The serialized shared part of every snapshot at `version` (Snapshot("")
  // without local_workloads); built by the first hello after a change.
  std::mutex shared_mu;  // taken under mu (shared or exclusive)
  std::optional<grpc::Slice> shared_snapshot;

  mutable std::mutex sessions_mu;  // taken after mu, before any Session::mu
  std::map<std::string, Session*> sessions;  // node -> the stream that owns it
  // Streams without a hello yet -> when they must have said it.
  std::map<Session*, std::chrono::steady_clock::time_point> awaiting_hello;
  bool shutting_down = false;
  std::condition_variable reaper_cv;  // with sessions_mu
  bool reaper_stop = false;
  std::thread reaper;
};

class ConfigHub::Session : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Session(ConfigHub::Impl* hub, grpc::CallbackServerContext* ctx)
      : hub_(hub), ctx_(ctx), id_(++hub->session_seq) {
    ++hub_->open_streams;
    StartRead(&raw_in_);
  }

  uint64_t id() const { return id_; }
  const std::string& node() const { return node_; }

  // Push bookkeeping, under the hub's sessions_mu (Hello and Publish queue pushes).
  uint64_t last_version = 0;  // version of the last push queued: the next delta's base
  uint64_t behind = 0;        // > 0: BEHIND, the node's applied version; nothing is pushed
  // Set by a NACK (read side): the next push is a snapshot.
  std::atomic<bool> needs_snapshot{false};

  // Queues a push; with replace_pending the not-yet-started pushes are dropped
  // first (msg must then be a snapshot). Returns false if the stream is closing.
  bool Push(grpc::ByteBuffer msg, bool replace_pending = false) {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    if (replace_pending && writing_) queue_.erase(queue_.begin() + 1, queue_.end());
    else if (replace_pending) queue_.clear();
    queue_.push_back(std::move(msg));
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
    return true;
  }
  size_t Backlog() {
    std::lock_guard lock(mu_);
    return queue_.size() > 0 ? queue_.size() - (writing_ ? 1 : 0) : 0;
  }
  // Ends the stream with `status` once the write in flight (if any) is done.
  void Close(grpc::Status status) {
    std::unique_lock lock(mu_);
    if (!closing_) final_status_ = std::move(status);
    closing_ = true;
    MaybeFinish(lock);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the agent went away or half-closed
      hub_->Detach(this);
      Close(grpc::Status::OK);
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (closing_) return;  // refused or timed out: nothing it says counts
    }
    in_.Clear();
    if (!grpc::SerializationTraits<AgentMessage>::Deserialize(&raw_in_, &in_).ok()) {
      Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "agent message: cannot parse weft.v1.AgentMessage"));
      return;
    }
    switch (in_.msg_case()) {
      case AgentMessage::kHello:
        if (in_.hello().node().empty()) {
          Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello: node name is empty"));
          return;
        }
        if (std::string why = config::CheckDns1123Subdomain(in_.hello().node()); !why.empty()) {
          Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "hello: node name \"" + CapText(in_.hello().node(), 64) +
                                 "\" is not a DNS-1123 subdomain: " + CapText(why, 256)));
          return;
        }
        if (!node_.empty() && node_ != in_.hello().node()) {
          Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "hello: node \"" + in_.hello().node() + "\" on a stream of node \"" + node_ + "\""));
          return;
        }
        node_ = in_.hello().node();
        hub_->Hello(this, in_.hello());
        break;
      case AgentMessage::kAck:
      case AgentMessage::kNack: {
        if (node_.empty()) {
          Close(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "ACK/NACK before hello"));
          return;
        }
        const bool ack = in_.msg_case() == AgentMessage::kAck;
        const std::string& nonce = ack ? in_.ack().nonce() : in_.nack().nonce();
        // Any NACK (even of an older push) means the node's config is not
        // what the pushes since built: its next push is a full snapshot.
        if (!ack) needs_snapshot = true;
        bool used = hub_->nodes.Answered(node_, id_, nonce, ack, ack ? "" : in_.nack().error());
        if (!ack)
          spdlog::warn("node {} NACKed version {}{}: {}", node_, in_.nack().version(), used ? "" : " (stale nonce, ignored)",
                       CapText(in_.nack().error(), kMaxNackReasonBytes));
        else
          spdlog::debug("node {} ACKed version {}{}", node_, in_.ack().version(), used ? "" : " (stale nonce, ignored)");
        break;
      }
      default:
        break;  // unknown message from a newer agent: ignore
    }
    StartRead(&raw_in_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    queue_.pop_front();
    writing_ = false;
    if (!ok) closing_ = true;  // the stream is broken; reads will fail too
    if (!queue_.empty() && !closing_) {
      writing_ = true;
      StartWrite(&queue_.front());
      return;
    }
    MaybeFinish(lock);
  }

  void OnDone() override {
    hub_->Detach(this);
    --hub_->open_streams;
    delete this;
  }

 private:
  // Finishes a closing stream with no write in flight. Finish is called after
  // unlocking: OnDone (which deletes this) may run as soon as it is called.
  void MaybeFinish(std::unique_lock<std::mutex>& lock) {
    if (!closing_ || writing_ || finished_) return;
    finished_ = true;
    queue_.clear();
    grpc::Status st = final_status_;
    lock.unlock();
    Finish(std::move(st));
  }

  ConfigHub::Impl* hub_;
  grpc::CallbackServerContext* ctx_;
  const uint64_t id_;
  grpc::ByteBuffer raw_in_;
  AgentMessage in_;
  std::string node_;  // set by the first hello (read side only)

  std::mutex mu_;
  std::deque<grpc::ByteBuffer> queue_;  // front is in flight while writing_
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ConfigHub::Impl::Stream(
    grpc::CallbackServerContext* ctx) {
  auto* s = new Session(this, ctx);
  const size_t open = open_streams.load();
  std::lock_guard lock(sessions_mu);
  if (shutting_down) {
    s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  } else if (open > options.max_streams) {
    spdlog::warn("ConfigDiscovery stream from {} refused: {} streams open, the limit is {} (--max-streams)",
                 ctx->peer(), open - 1, options.max_streams);
    s->Close(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "weft-controller serves at most " + std::to_string(options.max_streams) +
                              " ConfigDiscovery streams (--max-streams) and has that many open; retry later"));
  } else {
    awaiting_hello.emplace(s, std::chrono::steady_clock::now() + options.hello_timeout);
    reaper_cv.notify_all();
  }
  return s;
}

void ConfigHub::Impl::ReapSilentStreams() {
  std::unique_lock lock(sessions_mu);
  while (!reaper_stop) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + options.hello_timeout;
    for (auto it = awaiting_hello.begin(); it != awaiting_hello.end();) {
      if (it->second <= now) {
        spdlog::warn("ConfigDiscovery stream closed: no hello within {} ms", options.hello_timeout.count());
        it->first->Close(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                      "no hello within " + std::to_string(options.hello_timeout.count()) +
                                          " ms: a stream must begin with NodeHello"));
        it = awaiting_hello.erase(it);
        continue;
      }
      next = std::min(next, it->second);
      ++it;
    }
    reaper_cv.wait_until(lock, next);
  }
}

grpc::ByteBuffer ConfigHub::Impl::SnapshotFrame(const std::string& node, const std::string& nonce) {
  grpc::Slice shared;
  {
    std::lock_guard lock(shared_mu);
    if (!shared_snapshot) {
      v1::NodeConfig all = compiler.Snapshot("");  // no node is called "": hello refuses it
      all.clear_local_workloads();
      shared_snapshot = SharedSlice(all.SerializeAsString());
    }
    shared = *shared_snapshot;
  }
  PushHead h{version, &nonce, &options.store_id, std::nullopt};
  return Frame(h, kSnapshotTag, &shared, compiler.NodeSnapshot(node).SerializeAsString());
}

void ConfigHub::Impl::Hello(Session* s, const weft::v1::NodeHello& hello) {
  std::shared_lock state(mu);
  // The node has applied a later version of this very store than this
  // controller holds: this store went back in time (restored from an older
  // copy). Pushing would roll the node back; the agent would refuse it anyway.
  const bool behind = !options.store_id.empty() && hello.store_id() == options.store_id &&
                      hello.applied_version() > version;
  std::string nonce = NextNonce();
  std::optional<grpc::ByteBuffer> msg;
  if (!behind) msg = SnapshotFrame(hello.node(), nonce);
  Session* old = nullptr;
  {
    std::lock_guard lock(sessions_mu);
    awaiting_hello.erase(s);
    if (shutting_down) {
      s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
      return;
    }
    auto& slot = sessions[hello.node()];
    if (slot != s) old = slot;
    slot = s;
    nodes.Connected(hello, s->id());
    if (old)
      old->Close(grpc::Status(grpc::StatusCode::ABORTED,
                              "superseded by a newer stream of node " + hello.node()));
    if (behind) {
      s->behind = hello.applied_version();
      const std::string why = "this controller's store " + options.store_id + " is at revision " +
                              std::to_string(version) + ", the node has applied revision " +
                              std::to_string(hello.applied_version()) + " of it";
      nodes.SetBehind(hello.node(), s->id(), true, why);
    } else {
      s->behind = 0;
      s->last_version = version;
      s->needs_snapshot = false;
      nodes.Sent(hello.node(), s->id(), version, nonce);
      s->Push(std::move(*msg));
    }
  }
  if (behind) {
    spdlog::error("node {} connected (agent {}) and has applied revision {} of store {}, but this controller is at "
                  "revision {} of that store: its store went back (restored from an older copy?). Not pushing to "
                  "the node (BEHIND) until a revision passes {}. Restore the newer store, or apply the changes again",
                  hello.node(), CapText(hello.agent_version(), kMaxAgentVersionBytes), hello.applied_version(),
                  options.store_id, version, hello.applied_version());
    return;
  }
  if (!hello.store_id().empty() && hello.store_id() != options.store_id)
    spdlog::warn("node {} last applied version {} of store {}; this controller serves store {}: the node takes "
                 "this snapshot as a reset",
                 hello.node(), hello.applied_version(), CapText(hello.store_id(), 64), options.store_id);
  spdlog::info("node {} connected (agent {}, applied version {}); snapshot at version {}{}", hello.node(),
               CapText(hello.agent_version(), kMaxAgentVersionBytes), hello.applied_version(), version,
               old ? ", replacing its older stream" : "");
}

void ConfigHub::Impl::Detach(Session* s) {
  std::lock_guard lock(sessions_mu);
  awaiting_hello.erase(s);
  if (s->node().empty()) return;
  auto it = sessions.find(s->node());
  if (it == sessions.end() || it->second != s) return;
  sessions.erase(it);
  nodes.Disconnected(s->node(), s->id());
  spdlog::info("node {} disconnected", s->node());
}

ConfigHub::ConfigHub(NodeRegistry& nodes, CompilerOptions opts, HubOptions hub)
    : impl_(std::make_unique<Impl>(this, nodes, std::move(opts), std::move(hub))) {}
ConfigHub::~ConfigHub() = default;

grpc::Service* ConfigHub::service() { return impl_.get(); }

void ConfigHub::Reset(const std::vector<config::Resource>& all, uint64_t revision) {
  std::unique_lock state(impl_->mu);
  impl_->compiler.Reset(all);
  impl_->version = revision;
  std::lock_guard lock(impl_->shared_mu);
  impl_->shared_snapshot.reset();
}

void ConfigHub::Publish(uint64_t revision, const std::vector<config::Resource>& upserted,
                        const std::vector<config::ResourceKey>& deleted) {
  std::unique_lock state(impl_->mu);
  ChangeSet changes = impl_->compiler.Update(upserted, deleted);
  impl_->version = revision;
  if (changes.empty()) return;
  {
    std::lock_guard lock(impl_->shared_mu);
    impl_->shared_snapshot.reset();
  }
  // The delta in two parts, as the snapshot: what every node gets (services,
  // mesh-wide tables), serialized once, and each node's workloads.
  ChangeSet shared_changes = changes;
  shared_changes.workloads.clear();
  shared_changes.workload_nodes.clear();
  ChangeSet own_changes;
  own_changes.workloads = changes.workloads;
  own_changes.workload_nodes = changes.workload_nodes;
  v1::NodeConfigDelta shared_delta = impl_->compiler.Delta("", shared_changes);
  const bool shared_empty = compile::DeltaEmpty(shared_delta);
  grpc::Slice shared = SharedSlice(shared_delta.SerializeAsString());
  std::lock_guard lock(impl_->sessions_mu);
  size_t pushed = 0;
  for (auto& [node, s] : impl_->sessions) {
    if (s->behind >= revision) continue;  // BEHIND: nothing until a revision passes the node's
    std::string nonce = impl_->NextNonce();
    grpc::ByteBuffer msg;
    const bool caught_up = s->behind > 0;
    const bool backlog = s->Backlog() >= kMaxBacklog;
    // A snapshot after a NACK (the node's config is its last good one, not
    // what the deltas since built), for a slow stream, or for a node that was
    // BEHIND. It replaces the pushes not yet started: it supersedes them.
    const bool snapshot = caught_up || backlog || s->needs_snapshot.exchange(false);
    if (snapshot) {
      msg = impl_->SnapshotFrame(node, nonce);
      if (caught_up) {
        spdlog::warn("node {}: revision {} passes the node's applied {}: no longer BEHIND, sending a snapshot", node,
                     revision, s->behind);
        s->behind = 0;
        impl_->nodes.SetBehind(node, s->id(), false, "");
      }
    } else {
      std::string own;
      if (!own_changes.workloads.empty()) {
        v1::NodeConfigDelta d = impl_->compiler.Delta(node, own_changes);
        if (!compile::DeltaEmpty(d)) own = d.SerializeAsString();
      }
      if (shared_empty && own.empty()) continue;  // nothing for this node: send nothing (see node_status.hpp)
      PushHead h{revision, &nonce, &impl_->options.store_id, s->last_version};
      msg = Frame(h, kDeltaTag, shared_empty ? nullptr : &shared, own);
    }
    s->last_version = revision;
    impl_->nodes.Sent(node, s->id(), revision, nonce);
    if (s->Push(std::move(msg), snapshot)) ++pushed;
  }
  spdlog::info("revision {}: {} services, {} workloads changed; pushed to {} of {} streams", revision,
               changes.services.size(), changes.workloads.size(), pushed, impl_->sessions.size());
}

uint64_t ConfigHub::version() const {
  std::shared_lock state(impl_->mu);
  return impl_->version;
}

size_t ConfigHub::streams() const {
  std::lock_guard lock(impl_->sessions_mu);
  return impl_->sessions.size();
}

size_t ConfigHub::open_streams() const { return impl_->open_streams.load(); }

void ConfigHub::Shutdown() {
  std::lock_guard lock(impl_->sessions_mu);
  impl_->shutting_down = true;
  for (auto& [node, s] : impl_->sessions)
    s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  for (auto& [s, deadline] : impl_->awaiting_hello)
    s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  impl_->awaiting_hello.clear();
}

}  // namespace weft::controller
