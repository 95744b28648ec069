// ConfigDiscovery.Stream: the xDS-like push of compiled config to agents.
//
// Threading: gRPC's callback API. Each stream is a reactor (no thread of its
// own); reactions run on gRPC's callback executor and never block. A push is
// queued on the stream and written one message at a time (OnWriteDone starts
// the next). Publish() runs on the caller's thread (the Admin handler that
// committed the write).
//
// Serialization: the part of a snapshot every node shares (all services, the
// mesh-wide identity tables) is serialized once per version, the shared part
// of a delta once per revision; each stream's message references those bytes
// (a refcounted slice) and adds only its node's workloads. 1,000 agents
// connecting at 10,000 services cost one 3.8 MB serialization, not 1,000
// snapshot copies and serializations on the callback threads. A slow stream
// holds references to shared bytes, not copies, and delays only itself.
//
// Consistency: `mu_` (shared_mutex) guards the compiler and its version. A
// hello takes it shared to snapshot the compiler and register the stream; a
// Publish takes it exclusively to update the compiler and queue the deltas.
// So a stream either registered before a revision (and gets its delta) or
// after it (and its snapshot includes it); it never misses one.
//
// Protocol per stream: hello -> snapshot (version = compiled store revision,
// fresh nonce); each later revision -> the node's delta (only if non-empty),
// new nonce, base_version = the previous push's version. A stream with more
// than kMaxBacklog unsent pushes (a slow agent) has them replaced by one
// snapshot. After a NACK the node's next push is a snapshot, whether or not
// the revision changed anything for it. A newer stream for the same node
// supersedes the older one (finished with ABORTED). Every push carries the
// store id.
//
// BEHIND: a hello whose store_id is this store's and whose applied_version
// is higher than the compiled revision (this store was restored from an
// older copy) gets no snapshot and no deltas; the node shows BEHIND. Once a
// revision passes the node's version, it gets that revision's snapshot.
//
// Bounds: at most max_streams streams (more are finished with
// RESOURCE_EXHAUSTED); a stream that says no hello within hello_timeout is
// finished with DEADLINE_EXCEEDED (the "hello reaper" thread); node names
// must be DNS-1123 subdomains (INVALID_ARGUMENT otherwise).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "controller/compiler.hpp"
#include "controller/node_status.hpp"

namespace grpc {
class Service;
}

namespace weft::controller {

struct HubOptions {
  std::string store_id;  // sent with every push (ControllerMessage.store_id)
  std::chrono::milliseconds hello_timeout{5000};
  size_t max_streams = 10000;
};

class ConfigHub {
 public:
  static constexpr size_t kMaxBacklog = 16;

  ConfigHub(NodeRegistry& nodes, CompilerOptions opts = {}, HubOptions hub = {});
  ~ConfigHub();
  ConfigHub(const ConfigHub&) = delete;
  ConfigHub& operator=(const ConfigHub&) = delete;

  // Start-up: compile everything the store holds at `revision`.
  void Reset(const std::vector<config::Resource>& all, uint64_t revision);
  // After a committed write at `revision`: compile the change and push each
  // connected node its delta.
  void Publish(uint64_t revision, const std::vector<config::Resource>& upserted,
               const std::vector<config::ResourceKey>& deleted);
  uint64_t version() const;
  size_t streams() const;       // streams that said hello (one per node)
  size_t open_streams() const;  // every stream, with or without a hello

  // The ConfigDiscovery service to register on a grpc::ServerBuilder.
  grpc::Service* service();
  // Finishes every stream with UNAVAILABLE and refuses new ones (shutdown).
  void Shutdown();

  class Session;  // one stream (defined in config_service.cc)

 private:
  friend class Session;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::controller
