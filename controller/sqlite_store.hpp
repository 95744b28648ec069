// Store on SQLite: <data-dir>/weft.db, WAL, synchronous=FULL (a committed
// apply survives power loss). The database is the truth; an in-memory copy of
// every object (and the VIP index derived from it) serves reads and lets a
// write decide created/configured/unchanged before it touches the database.
// Memory is updated only after COMMIT succeeded.
//
// One process per data dir: Open takes an flock on <data-dir>/weft.lock.
//
// Never fail open: a store is created only by Open(..., init = true), in a
// data dir that holds no weft.db yet; without it, a data dir that is missing,
// holds no weft.db, or whose weft.db is empty, not a Weft store or unreadable
// is refused with what was found and what to do (an empty store would be
// pushed to every agent: every service and policy gone). The store's identity
// is a random id made at init (store_info 'id'), kept for the store's life;
// agents use it to tell a controller that went back in time (same id, lower
// revision) from a new store (another id). A store made before ids existed
// gets one on its first open if it holds data.
//
// Files: the data dir is 0700; weft.db, weft.db-wal, weft.db-shm and
// weft.lock are 0600 (SQLite gives the -wal/-shm files the db's mode).
//
// Schema (user_version 1):
//   meta(key TEXT PRIMARY KEY, value INTEGER)       -- 'revision'
//   store_info(key TEXT PRIMARY KEY, value TEXT)    -- 'id', 'created_unix_ms'
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
  // Opens the store of data_dir and loads everything. init: create a new,
  // empty store (and data_dir, 0700) instead; refused if weft.db exists.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& data_dir, VipAllocator vips,
                                                   bool init = false);
  ~SqliteStore() override;

  Result<WriteResult> Apply(const std::vector<config::Resource>& resources, bool dry_run) override;
  Result<WriteResult> Delete(const std::vector<config::ResourceKey>& keys, bool dry_run) override;
  std::optional<config::Resource> Get(const config::ResourceKey& key) const override;
  std::vector<config::Resource> List(const std::string& kind, const std::string& ns) const override;
  uint64_t Revision() const override;
  std::vector<config::Resource> LoadAll() const override;
  // The store's identity (32 hex digits), fixed at init.
  const std::string& store_id() const { return store_id_; }
  // Path of weft.db.
  const std::string& path() const { return path_; }

  // StateStore (table `state`): read from the database, not cached.
  Result<std::map<std::string, std::string>> LoadState(const std::string& prefix) const override;
  Status WriteState(const std::map<std::string, std::optional<std::string>>& records) override;

 private:
  SqliteStore(VipAllocator vips) : vips_(std::move(vips)) {}
  Status Load();
  Status Exec(const char* sql);
  // Creates the schema and a new store id (init).
  Status Initialize();
  // An existing weft.db: refuses what is not an initialized Weft store (see
  // above); gives a store made before ids existed its id.
  Status CheckExisting(const std::string& data_dir);
  // WAL checkpoints run here, on their own connection, every 500 ms, not
  // inside a write: an automatic checkpoint (copy + fsync of ~1,000 pages)
  // used to land on every ~100th apply and hold it for 200-400 ms. PASSIVE
  // (never waits for a writer); a WAL that passes kWalTruncateBytes anyway
  // (writes without a pause longer than a checkpoint) gets a TRUNCATE
  // checkpoint, which waits for the writer in progress.
  void CheckpointLoop();

  VipAllocator vips_;
  UniqueFd lock_fd_;
  std::string path_;
  std::string store_id_;
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
