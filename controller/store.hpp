// The controller's durable state: every applied resource and one global
// revision counter. The interface is the seam for a replicated store later;
// today SqliteStore (sqlite_store.hpp) implements it.
//
// Contract:
//  - Apply and Delete are all-or-nothing: one transaction per call.
//  - Every call that changes something bumps the revision by exactly one and
//    stamps each changed resource with resource_version = that revision.
//  - "unchanged" (identical canonical JSON after admission, e.g. VIP
//    allocation) writes nothing and bumps nothing.
//  - dry_run runs the same admission and reports the same actions, writes
//    nothing; the returned revision is the current one.
//  - Errors carry an errno in Status::err() so callers can map them:
//    ENOENT (delete of an absent resource), EEXIST (clusterIP collision),
//    ENOSPC (service CIDR exhausted), EINVAL (bad input), EIO (database).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/resource.hpp"
#include "weft/status.hpp"

namespace weft::controller {

enum class ChangeAction { kCreated, kConfigured, kUnchanged, kDeleted };
const char* ToString(ChangeAction a);  // "created", "configured", ...

struct Change {
  config::ResourceKey key;
  ChangeAction action = ChangeAction::kUnchanged;
  uint64_t resource_version = 0;  // after the call (the deleted object's last one for kDeleted)
};

struct WriteResult {
  uint64_t revision = 0;                    // store revision after the call
  std::vector<Change> changes;              // one per input, input order
  std::vector<config::Resource> upserted;   // the objects as stored (created/configured only)
  std::vector<config::ResourceKey> deleted; // keys removed
  bool changed() const { return !upserted.empty() || !deleted.empty(); }
};

class Store {
 public:
  virtual ~Store() = default;
  // Stores `resources` (created/configured/unchanged per resource). Duplicate
  // keys in one batch are an error.
  virtual Result<WriteResult> Apply(const std::vector<config::Resource>& resources, bool dry_run) = 0;
  // Removes `keys`; an absent key is NOT_FOUND-like error naming it, and
  // nothing is removed.
  virtual Result<WriteResult> Delete(const std::vector<config::ResourceKey>& keys, bool dry_run) = 0;
  virtual std::optional<config::Resource> Get(const config::ResourceKey& key) const = 0;
  // Sorted by (kind, namespace, name); empty filter = any.
  virtual std::vector<config::Resource> List(const std::string& kind, const std::string& ns) const = 0;
  virtual uint64_t Revision() const = 0;
  virtual std::vector<config::Resource> LoadAll() const = 0;
};

// Durable key/value records outside the resource model: derived state that
// must survive a restart but is not a resource (the compiler's identity
// numbers and policy ids). Not revisioned, not in List/LoadAll, no admission.
class StateStore {
 public:
  virtual ~StateStore() = default;
  // Every record whose key starts with `prefix`.
  virtual Result<std::map<std::string, std::string>> LoadState(const std::string& prefix) const = 0;
  // Upserts (value) and deletes (nullopt) in one transaction: all or nothing.
  virtual Status WriteState(const std::map<std::string, std::optional<std::string>>& records) = 0;
};

}  // namespace weft::controller
