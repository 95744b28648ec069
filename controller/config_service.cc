#include "controller/config_service.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <random>

#include "weft/v1/config.grpc.pb.h"

namespace weft::controller {

using weft::v1::AgentMessage;
using weft::v1::ControllerMessage;

struct ConfigHub::Impl : public weft::v1::ConfigDiscovery::CallbackService {
  explicit Impl(ConfigHub* h, NodeRegistry& n, CompilerOptions opts) : hub(h), nodes(n), compiler(std::move(opts)) {
    std::random_device rd;
    nonce_prefix = (uint64_t{rd()} << 32) | rd();
  }
  grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* Stream(grpc::CallbackServerContext* ctx) override;

  std::string NextNonce() {
    char buf[48];
    snprintf(buf, sizeof buf, "%016llx-%llu", static_cast<unsigned long long>(nonce_prefix),
             static_cast<unsigned long long>(++nonce_seq));
    return buf;
  }
  // Registers `s` as the stream of its node and queues its snapshot.
  void Hello(Session* s, const weft::v1::NodeHello& hello);
  void Detach(Session* s);

  ConfigHub* hub;
  NodeRegistry& nodes;
  uint64_t nonce_prefix = 0;
  std::atomic<uint64_t> nonce_seq{0};
  std::atomic<uint64_t> session_seq{0};

  mutable std::shared_mutex mu;  // compiler + version
  Compiler compiler;
  uint64_t version = 0;

  mutable std::mutex sessions_mu;  // taken after mu, before any Session::mu
  std::map<std::string, Session*> sessions;  // node -> the stream that owns it
  bool shutting_down = false;
};

class ConfigHub::Session : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage> {
 public:
  Session(ConfigHub::Impl* hub, grpc::CallbackServerContext* ctx)
      : hub_(hub), ctx_(ctx), id_(++hub->session_seq) {
    StartRead(&in_);
  }

  uint64_t id() const { return id_; }
  const std::string& node() const { return node_; }

  // Queues a push; with replace_pending the not-yet-started pushes are dropped
  // first (msg must then be a snapshot). Returns false if the stream is closing.
  bool Push(ControllerMessage msg, bool replace_pending = false) {
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
    switch (in_.msg_case()) {
      case AgentMessage::kHello:
        if (in_.hello().node().empty()) {
          Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello: node name is empty"));
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
        bool used = hub_->nodes.Answered(node_, id_, nonce, ack, ack ? "" : in_.nack().error());
        if (!ack)
          spdlog::warn("node {} NACKed version {}{}: {}", node_, in_.nack().version(), used ? "" : " (stale nonce, ignored)",
                       in_.nack().error());
        else
          spdlog::debug("node {} ACKed version {}{}", node_, in_.ack().version(), used ? "" : " (stale nonce, ignored)");
        break;
      }
      default:
        break;  // unknown message from a newer agent: ignore
    }
    StartRead(&in_);
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
  AgentMessage in_;
  std::string node_;  // set by the first hello (read side only)

  std::mutex mu_;
  std::deque<ControllerMessage> queue_;  // front is in flight while writing_
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
};

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* ConfigHub::Impl::Stream(grpc::CallbackServerContext* ctx) {
  auto* s = new Session(this, ctx);
  {
    std::lock_guard lock(sessions_mu);
    if (shutting_down) s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  }
  return s;
}

void ConfigHub::Impl::Hello(Session* s, const weft::v1::NodeHello& hello) {
  std::shared_lock state(mu);
  ControllerMessage msg;
  msg.set_version(version);
  *msg.mutable_snapshot() = compiler.Snapshot(hello.node());
  msg.set_nonce(NextNonce());
  Session* old = nullptr;
  {
    std::lock_guard lock(sessions_mu);
    if (shutting_down) {
      s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
      return;
    }
    auto& slot = sessions[hello.node()];
    if (slot != s) old = slot;
    slot = s;
    nodes.Connected(hello, s->id());
    nodes.Sent(hello.node(), s->id(), msg.version(), msg.nonce());
    if (old)
      old->Close(grpc::Status(grpc::StatusCode::ABORTED,
                              "superseded by a newer stream of node " + hello.node()));
    s->Push(std::move(msg));
  }
  spdlog::info("node {} connected (agent {}, applied version {}); snapshot at version {}{}", hello.node(),
               hello.agent_version(), hello.applied_version(), version, old ? ", replacing its older stream" : "");
}

void ConfigHub::Impl::Detach(Session* s) {
  std::lock_guard lock(sessions_mu);
  if (s->node().empty()) return;
  auto it = sessions.find(s->node());
  if (it == sessions.end() || it->second != s) return;
  sessions.erase(it);
  nodes.Disconnected(s->node(), s->id());
  spdlog::info("node {} disconnected", s->node());
}

ConfigHub::ConfigHub(NodeRegistry& nodes, CompilerOptions opts)
    : impl_(std::make_unique<Impl>(this, nodes, std::move(opts))) {}
ConfigHub::~ConfigHub() = default;

grpc::Service* ConfigHub::service() { return impl_.get(); }

void ConfigHub::Reset(const std::vector<config::Resource>& all, uint64_t revision) {
  std::unique_lock state(impl_->mu);
  impl_->compiler.Reset(all);
  impl_->version = revision;
}

void ConfigHub::Publish(uint64_t revision, const std::vector<config::Resource>& upserted,
                        const std::vector<config::ResourceKey>& deleted) {
  std::unique_lock state(impl_->mu);
  ChangeSet changes = impl_->compiler.Update(upserted, deleted);
  impl_->version = revision;
  if (changes.empty()) return;
  std::lock_guard lock(impl_->sessions_mu);
  size_t pushed = 0;
  for (auto& [node, s] : impl_->sessions) {
    ControllerMessage msg;
    bool replace = s->Backlog() >= kMaxBacklog;
    if (replace) {
      *msg.mutable_snapshot() = impl_->compiler.Snapshot(node);
    } else {
      *msg.mutable_delta() = impl_->compiler.Delta(node, changes);
      const auto& d = msg.delta();
      if (d.upserted_services_size() == 0 && d.removed_services_size() == 0 && d.upserted_workloads_size() == 0 &&
          d.removed_workloads_size() == 0)
        continue;  // nothing for this node: send nothing (see node_status.hpp)
    }
    msg.set_version(revision);
    msg.set_nonce(impl_->NextNonce());
    impl_->nodes.Sent(node, s->id(), revision, msg.nonce());
    if (s->Push(std::move(msg), replace)) ++pushed;
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

void ConfigHub::Shutdown() {
  std::lock_guard lock(impl_->sessions_mu);
  impl_->shutting_down = true;
  for (auto& [node, s] : impl_->sessions)
    s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
}

}  // namespace weft::controller
