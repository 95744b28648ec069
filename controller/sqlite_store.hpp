// Store on SQLite: <data-dir>/weft.db, WAL, synchronous=FULL (a committed
// apply survives power loss). The database is the truth; an in-memory copy of
// every object (and the VIP index derived from it) serves reads and lets a
// write decide created/configured/unchanged before it touches the database.
// Memory is updated only after COMMIT succeeded.
//
// One process per data dir: Open takes an flock on <data-dir>/weft.lock.
//
// Schema (user_version 1):
//   meta(key TEXT PRIMARY KEY, value INTEGER)       -- 'revision'
//   resources(kind, namespace, name, api_version, json, resource_version,
//             created_revision, updated_revision, PRIMARY KEY(kind, namespace, name))
//   state(key TEXT PRIMARY KEY, value BLOB)         -- StateStore records (created if absent)
#pragma once

#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "controller/store.hpp"
#include "controller/vip_allocator.hpp"
#include "weft/unique_fd.hpp"

struct sqlite3;

namespace weft::controller {

class SqliteStore final : public Store, public StateStore {
 public:
  // Creates data_dir if needed, opens or creates weft.db, loads everything.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& data_dir, VipAllocator vips);
  ~SqliteStore() override;

  Result<WriteResult> Apply(const std::vector<config::Resource>& resources, bool dry_run) override;
  Result<WriteResult> Delete(const std::vector<config::ResourceKey>& keys, bool dry_run) override;
  std::optional<config::Resource> Get(const config::ResourceKey& key) const override;
  std::vector<config::Resource> List(const std::string& kind, const std::string& ns) const override;
  uint64_t Revision() const override;
  std::vector<config::Resource> LoadAll() const override;

  // StateStore (table `state`): read from the database, not cached.
  Result<std::map<std::string, std::string>> LoadState(const std::string& prefix) const override;
  Status WriteState(const std::map<std::string, std::optional<std::string>>& records) override;

 private:
  SqliteStore(VipAllocator vips) : vips_(std::move(vips)) {}
  Status Load();
  Status Exec(const char* sql);
  // WAL checkpoints run here, on their own connection, every 500 ms, not
  // inside a write: an automatic checkpoint (copy + fsync of ~1,000 pages)
  // used to land on every ~100th apply and hold it for 200-400 ms.
  void CheckpointLoop();

  VipAllocator vips_;
  UniqueFd lock_fd_;
  std::string path_;
  sqlite3* db_ = nullptr;

  std::thread checkpointer_;
  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  bool stopping_ = false;

  mutable std::shared_mutex mu_;  // exclusive for writes, shared for reads
  std::map<config::ResourceKey, config::Resource> objects_;
  VipIndex vip_index_;
  uint64_t revision_ = 0;
};

}  // namespace weft::controller
