// What the controller knows about every node that ever said hello since the
// controller started: the versions pushed to it and its answers.
//
// State of a node (admin.proto NodeStatus.state):
//   DISCONNECTED  no open stream
//   SYNCED        the latest push (newest nonce) was ACKed
//   NACKED        the latest push was NACKed (reason kept)
//   STALE         the latest push is not answered yet
// An ACK/NACK whose nonce is not the latest pushed to that stream is ignored,
// as in xDS. A revision whose delta is empty for a node sends it nothing: its
// last push still describes its config, so a SYNCED node stays SYNCED.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "weft/v1/config.pb.h"

namespace weft::controller {

enum class NodeState { kSynced, kStale, kNacked, kDisconnected };
const char* ToString(NodeState s);

struct NodeRecord {
  std::string node;
  std::string agent_version;
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
  NodeState state() const;
};

class NodeRegistry {
 public:
  // A stream `session` said hello for `node`; it now owns the record.
  void Connected(const weft::v1::NodeHello& hello, uint64_t session);
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

 private:
  mutable std::mutex mu_;
  std::map<std::string, NodeRecord> nodes_;
};

int64_t NowUnixMs();

}  // namespace weft::controller
