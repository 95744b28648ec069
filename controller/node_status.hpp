// What the controller knows about every node that ever said hello since the
// controller started: the versions pushed to it and its answers.
//
// State of a node (admin.proto NodeStatus.state):
//   DISCONNECTED  no open stream
//   BEHIND        the node has applied a higher version of this controller's
//                 store than the controller holds (a store restored from an
//                 older backup): nothing is pushed to it (config_service.hpp)
//   SYNCED        the latest push (newest nonce) was ACKed
//   NACKED        the latest push was NACKed (reason kept)
//   STALE         the latest push is not answered yet
// An ACK/NACK whose nonce is not the latest pushed to that stream is ignored,
// as in xDS. A revision whose delta is empty for a node sends it nothing: its
// last push still describes its config, so a SYNCED node stays SYNCED. After
// a NACK the node's next push is a full snapshot (never a delta), so a node
// is SYNCED again only once a full snapshot was ACKed.
//
// Bounds: agent_version and NACK reasons are capped (CapText), node names
// are DNS-1123 subdomains (checked at hello); a disconnected node is
// forgotten after forget_disconnected, and at most max_disconnected of them
// are kept (the longest gone first). Connected nodes are bounded by the
// stream cap (ServerOptions::max_streams).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "weft/clock.hpp"
#include "weft/v1/config.pb.h"

namespace weft::controller {

enum class NodeState { kSynced, kStale, kNacked, kDisconnected, kBehind };
const char* ToString(NodeState s);

constexpr size_t kMaxAgentVersionBytes = 128;
constexpr size_t kMaxNackReasonBytes = 4096;
// `text` on one line (control characters become spaces), at most `max` bytes
// (cut at a UTF-8 boundary, then "... (N bytes)").
std::string CapText(const std::string& text, size_t max);

struct NodeRecord {
  std::string node;
  std::string agent_version;
  uint64_t agent_applied_version = 0;  // from the hello
  std::string agent_store_id;          // from the hello
  bool behind = false;                 // see BEHIND above
  std::string state_reason;            // why BEHIND
  weft::v1::KernelCapabilities capabilities;
  bool connected = false;
  uint64_t session = 0;  // id of the stream that owns the record now
  uint64_t last_sent_version = 0;
  uint64_t last_acked_version = 0;
  uint64_t last_nacked_version = 0;
  std::string nack_reason;
  std::string latest_nonce;
  enum class Answer { kNone, kAck, kNack } latest_answer = Answer::kNone;
  int64_t last_seen_unix_ms = 0;
  uint64_t disconnect_order = 0;  // the registry's count of disconnects when this one happened
  NodeState state() const;
};

struct NodeRegistryOptions {
  std::chrono::milliseconds forget_disconnected{3600 * 1000};
  size_t max_disconnected = 4096;
  const Clock* clock = nullptr;  // weft/clock.hpp (tests inject a FakeClock); nullptr: the system clock
};

class NodeRegistry {
 public:
  explicit NodeRegistry(NodeRegistryOptions opts = {});
  // A stream `session` said hello for `node`; it now owns the record.
  void Connected(const weft::v1::NodeHello& hello, uint64_t session);
  // The controller is (or no longer is) behind the node: `reason` says by how much.
  void SetBehind(const std::string& node, uint64_t session, bool behind, const std::string& reason);
  // A push was queued on `session`.
  void Sent(const std::string& node, uint64_t session, uint64_t version, const std::string& nonce);
  // An ACK (error empty) or NACK. Returns false if ignored (stale nonce or a
  // stream that no longer owns the node).
  bool Answered(const std::string& node, uint64_t session, const std::string& nonce, bool ack,
                const std::string& error);
  // The stream ended; ignored if a newer stream owns the node.
  void Disconnected(const std::string& node, uint64_t session);

  std::vector<NodeRecord> All() const;  // sorted by node name
  std::optional<NodeRecord> Find(const std::string& node) const;
  size_t size() const;

 private:
  int64_t Now() const;
  // Forgets disconnected nodes past the bounds (mu_ held). const: a read
  // (All) forgets what expired, as an eviction.
  void Prune(int64_t now) const;

  NodeRegistryOptions opts_;
  mutable std::mutex mu_;
  mutable std::map<std::string, NodeRecord> nodes_;
  uint64_t disconnects_ = 0;  // orders disconnects within one millisecond
};

int64_t NowUnixMs();

}  // namespace weft::controller
