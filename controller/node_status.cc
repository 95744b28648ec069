#include "controller/node_status.hpp"

#include <algorithm>
#include <tuple>
#include <chrono>
#include <vector>

namespace weft::controller {

int64_t NowUnixMs() { return SystemClock().NowUnixMs(); }

const char* ToString(NodeState s) {
  switch (s) {
    case NodeState::kSynced: return "SYNCED";
    case NodeState::kStale: return "STALE";
    case NodeState::kNacked: return "NACKED";
    case NodeState::kDisconnected: return "DISCONNECTED";
    case NodeState::kBehind: return "BEHIND";
  }
  return "UNKNOWN";
}

std::string CapText(const std::string& text, size_t max) {
  std::string out = text.size() > max ? text.substr(0, max) : text;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (text.size() <= max) return out;
  // Do not end inside a UTF-8 sequence: drop continuation bytes and the lead byte they follow.
  size_t end = out.size();
  while (end > 0 && (static_cast<unsigned char>(out[end - 1]) & 0xc0) == 0x80) --end;
  if (end > 0 && (static_cast<unsigned char>(out[end - 1]) & 0x80)) --end;
  out.resize(end);
  return out + "... (" + std::to_string(text.size()) + " bytes)";
}

NodeState NodeRecord::state() const {
  if (!connected) return NodeState::kDisconnected;
  if (behind) return NodeState::kBehind;
  switch (latest_answer) {
    case Answer::kAck: return NodeState::kSynced;
    case Answer::kNack: return NodeState::kNacked;
    case Answer::kNone: break;
  }
  return NodeState::kStale;
}

NodeRegistry::NodeRegistry(NodeRegistryOptions opts) : opts_(std::move(opts)) {}

int64_t NodeRegistry::Now() const { return (opts_.clock ? *opts_.clock : SystemClock()).NowUnixMs(); }

void NodeRegistry::Prune(int64_t now) const {
  // (last seen, disconnect order, node) of disconnected nodes: the oldest go first,
  // and two in the same millisecond in the order they went (not by name).
  std::vector<std::tuple<int64_t, uint64_t, std::string>> gone;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (!it->second.connected && now - it->second.last_seen_unix_ms >= opts_.forget_disconnected.count()) {
      it = nodes_.erase(it);
      continue;
    }
    if (!it->second.connected) gone.emplace_back(it->second.last_seen_unix_ms, it->second.disconnect_order, it->first);
    ++it;
  }
  if (gone.size() <= opts_.max_disconnected) return;
  std::sort(gone.begin(), gone.end());
  for (size_t i = 0; i < gone.size() - opts_.max_disconnected; ++i) nodes_.erase(std::get<2>(gone[i]));
}

void NodeRegistry::Connected(const weft::v1::NodeHello& hello, uint64_t session) {
  std::lock_guard lock(mu_);
  const int64_t now = Now();
  NodeRecord& r = nodes_[hello.node()];
  r.node = hello.node();
  r.agent_version = CapText(hello.agent_version(), kMaxAgentVersionBytes);
  r.agent_applied_version = hello.applied_version();
  r.agent_store_id = CapText(hello.store_id(), 64);
  r.behind = false;
  r.state_reason.clear();
  r.capabilities = hello.capabilities();
  r.capabilities.set_kernel_release(CapText(r.capabilities.kernel_release(), kMaxAgentVersionBytes));
  r.connected = true;
  r.session = session;
  r.latest_nonce.clear();
  r.latest_answer = NodeRecord::Answer::kNone;
  r.last_seen_unix_ms = now;
  Prune(now);
}

void NodeRegistry::SetBehind(const std::string& node, uint64_t session, bool behind, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session) return;
  it->second.behind = behind;
  it->second.state_reason = behind ? reason : "";
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
  r.last_seen_unix_ms = Now();
  if (nonce.empty() || nonce != r.latest_nonce) return false;
  if (ack) {
    r.latest_answer = NodeRecord::Answer::kAck;
    r.last_acked_version = r.last_sent_version;
  } else {
    r.latest_answer = NodeRecord::Answer::kNack;
    r.last_nacked_version = r.last_sent_version;
    r.nack_reason = CapText(error, kMaxNackReasonBytes);
  }
  return true;
}

void NodeRegistry::Disconnected(const std::string& node, uint64_t session) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session) return;
  it->second.connected = false;
  it->second.last_seen_unix_ms = Now();
  it->second.disconnect_order = ++disconnects_;
  Prune(it->second.last_seen_unix_ms);
}

size_t NodeRegistry::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

std::vector<NodeRecord> NodeRegistry::All() const {
  std::lock_guard lock(mu_);
  Prune(Now());  // time-based forgetting needs no event
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
