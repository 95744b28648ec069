#include "controller/node_status.hpp"

#include <chrono>

namespace weft::controller {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* ToString(NodeState s) {
  switch (s) {
    case NodeState::kSynced: return "SYNCED";
    case NodeState::kStale: return "STALE";
    case NodeState::kNacked: return "NACKED";
    case NodeState::kDisconnected: return "DISCONNECTED";
  }
  return "UNKNOWN";
}

NodeState NodeRecord::state() const {
  if (!connected) return NodeState::kDisconnected;
  switch (latest_answer) {
    case Answer::kAck: return NodeState::kSynced;
    case Answer::kNack: return NodeState::kNacked;
    case Answer::kNone: break;
  }
  return NodeState::kStale;
}

void NodeRegistry::Connected(const weft::v1::NodeHello& hello, uint64_t session) {
  std::lock_guard lock(mu_);
  NodeRecord& r = nodes_[hello.node()];
  r.node = hello.node();
  r.agent_version = hello.agent_version();
  r.capabilities = hello.capabilities();
  r.connected = true;
  r.session = session;
  r.latest_nonce.clear();
  r.latest_answer = NodeRecord::Answer::kNone;
  r.last_seen_unix_ms = NowUnixMs();
}

void NodeRegistry::Sent(const std::string& node, uint64_t session, uint64_t version, const std::string& nonce) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session) return;
  it->second.last_sent_version = version;
  it->second.latest_nonce = nonce;
  it->second.latest_answer = NodeRecord::Answer::kNone;
}

bool NodeRegistry::Answered(const std::string& node, uint64_t session, const std::string& nonce, bool ack,
                            const std::string& error) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session) return false;
  NodeRecord& r = it->second;
  r.last_seen_unix_ms = NowUnixMs();
  if (nonce.empty() || nonce != r.latest_nonce) return false;
  if (ack) {
    r.latest_answer = NodeRecord::Answer::kAck;
    r.last_acked_version = r.last_sent_version;
  } else {
    r.latest_answer = NodeRecord::Answer::kNack;
    r.last_nacked_version = r.last_sent_version;
    r.nack_reason = error;
  }
  return true;
}

void NodeRegistry::Disconnected(const std::string& node, uint64_t session) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session) return;
  it->second.connected = false;
  it->second.last_seen_unix_ms = NowUnixMs();
}

std::vector<NodeRecord> NodeRegistry::All() const {
  std::lock_guard lock(mu_);
  std::vector<NodeRecord> out;
  out.reserve(nodes_.size());
  for (const auto& [n, r] : nodes_) out.push_back(r);
  return out;
}

std::optional<NodeRecord> NodeRegistry::Find(const std::string& node) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

}  // namespace weft::controller
