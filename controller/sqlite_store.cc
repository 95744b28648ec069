#include "controller/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>

#include "weft/sys.hpp"

namespace weft::controller {
namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resources(
  kind TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  api_version TEXT NOT NULL,
  json TEXT NOT NULL,
  resource_version INTEGER NOT NULL,
  created_revision INTEGER NOT NULL,
  updated_revision INTEGER NOT NULL,
  PRIMARY KEY(kind, namespace, name));
INSERT OR IGNORE INTO meta(key, value) VALUES('revision', 0);
PRAGMA user_version = 1;
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, uint64_t v) {
    sqlite3_bind_int64(st_, i, static_cast<sqlite3_int64>(v));
    return *this;
  }
  int Step() { return sqlite3_step(st_); }
  // Runs a statement that returns no rows; resets it for reuse.
  Status Run(const std::string& what) {
    int rc = sqlite3_step(st_);
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    if (rc != SQLITE_DONE) return Status::Error(what + ": " + sqlite3_errmsg(db_), EIO);
    return Status::Ok();
  }
  std::string ColText(int i) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(st_, i));
    return p ? std::string(p, sqlite3_column_bytes(st_, i)) : std::string();
  }
  uint64_t ColInt(int i) const { return static_cast<uint64_t>(sqlite3_column_int64(st_, i)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

// Rolls back unless committed.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {}
  ~Txn() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Status Begin() {
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
      return Status::Error(std::string("begin transaction: ") + sqlite3_errmsg(db_), EIO);
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
      return Status::Error(std::string("commit: ") + sqlite3_errmsg(db_), EIO);
    open_ = false;
    return Status::Ok();
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

// StateStore records (an addition to schema 1: created if absent, never read by older code).
const char* kStateSchema = R"sql(
CREATE TABLE IF NOT EXISTS state(
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL);
)sql";

// The store's identity (an addition to schema 1, made at init).
const char* kStoreInfoSchema = R"sql(
CREATE TABLE IF NOT EXISTS store_info(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
)sql";

// A WAL that was checkpointed completely is restarted by the next write and
// then truncated to this size (PRAGMA journal_size_limit).
constexpr int64_t kWalSizeLimitBytes = 4 << 20;
// Past this size after a PASSIVE checkpoint (writes with no pause long enough
// for one to catch up), the checkpointer runs a TRUNCATE checkpoint.
constexpr int64_t kWalTruncateBytes = 64 << 20;

// 128 random bits as 32 hex digits.
std::string NewStoreId() {
  unsigned char b[16];
  if (::getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    std::random_device rd;
    for (auto& x : b) x = static_cast<unsigned char>(rd());
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char x : b) {
    out.push_back(hex[x >> 4]);
    out.push_back(hex[x & 15]);
  }
  return out;
}

// -1 if absent.
int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

// Data files are 0600; stores made by older controllers were 0644.
Status TightenMode(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();  // absent
  if (!S_ISREG(st.st_mode)) return Status::Error(path + ": not a regular file", EINVAL);
  if ((st.st_mode & 07777) != 0600 && ::chmod(path.c_str(), 0600) != 0) return Status::Errno("chmod 0600 " + path, errno);
  return Status::Ok();
}

bool SameObject(const config::Resource& a, const config::Resource& b) {
  return a.api_version == b.api_version && a.object == b.object;
}

}  // namespace

const char* ToString(ChangeAction a) {
  switch (a) {
    case ChangeAction::kCreated: return "created";
    case ChangeAction::kConfigured: return "configured";
    case ChangeAction::kUnchanged: return "unchanged";
    case ChangeAction::kDeleted: return "deleted";
  }
  return "unknown";
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& data_dir, VipAllocator vips, bool init) {
  struct stat dst {};
  if (::stat(data_dir.c_str(), &dst) != 0) {
    if (errno != ENOENT) return Status::Errno("data dir " + data_dir, errno);
    if (!init)
      return Status::Error("data dir " + data_dir +
                               " does not exist. Refusing to start with an empty store (it would remove every "
                               "service and policy from every node). A new cluster: start once with --init. A store "
                               "that lived there: restore the data dir from a backup",
                           ENOENT);
  } else if (!S_ISDIR(dst.st_mode)) {
    return Status::Error("data dir " + data_dir + ": not a directory", ENOTDIR);
  }
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(data_dir).Wrap("data dir"));
  std::unique_ptr<SqliteStore> s(new SqliteStore(std::move(vips)));
  const std::string lock_path = data_dir + "/weft.lock";
  s->lock_fd_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!s->lock_fd_) return Status::Errno("open " + lock_path, errno);
  if (::flock(s->lock_fd_.get(), LOCK_EX | LOCK_NB) != 0)
    return Status::Error("lock " + lock_path + ": another weft-controller uses data dir " + data_dir, EBUSY);
  (void)::fchmod(s->lock_fd_.get(), 0600);
  s->path_ = data_dir + "/weft.db";
  const int64_t size = FileSize(s->path_);
  if (init && size >= 0)
    return Status::Error("--init: " + s->path_ + " already exists (" + std::to_string(size) +
                             " bytes); --init only creates a new store. Start without --init to use it; to start "
                             "over with an empty store, move " + data_dir + " away first",
                         EEXIST);
  if (init && FileSize(s->path_ + "-wal") >= 0)
    return Status::Error("--init: " + s->path_ + "-wal exists without " + s->path_ +
                             ": a store was here; restore weft.db, or move " + data_dir + " away first",
                         EEXIST);
  if (!init && size < 0)
    return Status::Error("data dir " + data_dir +
                             " holds no weft.db. Refusing to start with an empty store (it would remove every "
                             "service and policy from every node). A new cluster: start once with --init. A store "
                             "that lived there: restore weft.db from a backup",
                         ENOENT);
  if (init) {
    UniqueFd created(::open(s->path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!created) return Status::Errno("create " + s->path_, errno);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) WEFT_RETURN_IF_ERROR(TightenMode(s->path_ + suffix));
  if (sqlite3_open_v2(s->path_.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK)
    return Status::Error(s->path_ + " cannot be opened: " + (s->db_ ? sqlite3_errmsg(s->db_) : "out of memory") +
                             ". Refusing to start",
                         EIO);
  sqlite3_busy_timeout(s->db_, 5000);
  if (init) {
    WEFT_RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
    WEFT_RETURN_IF_ERROR(s->Initialize());
  } else {
    WEFT_RETURN_IF_ERROR(s->CheckExisting(data_dir));
    WEFT_RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  }
  WEFT_RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  WEFT_RETURN_IF_ERROR(s->Exec("PRAGMA wal_autocheckpoint=0"));  // CheckpointLoop does it
  WEFT_RETURN_IF_ERROR(s->Exec(("PRAGMA journal_size_limit=" + std::to_string(kWalSizeLimitBytes)).c_str()));
  WEFT_RETURN_IF_ERROR(s->Exec(kStateSchema));
  WEFT_RETURN_IF_ERROR(s->Load());
  for (const char* suffix : {"-wal", "-shm"}) WEFT_RETURN_IF_ERROR(TightenMode(s->path_ + suffix));
  spdlog::info("store {}: {}id {}, revision {}", s->path_, init ? "created, " : "", s->store_id_, s->revision_);
  s->checkpointer_ = std::thread([p = s.get()] { p->CheckpointLoop(); });
  return s;
}

Status SqliteStore::Initialize() {
  Txn txn(db_);
  WEFT_RETURN_IF_ERROR(txn.Begin());
  WEFT_RETURN_IF_ERROR(Exec(kSchema));
  WEFT_RETURN_IF_ERROR(Exec(kStateSchema));
  WEFT_RETURN_IF_ERROR(Exec(kStoreInfoSchema));
  const std::string id = NewStoreId();
  Stmt put(db_, "INSERT INTO store_info(key, value) VALUES('id', ?1), ('created_unix_ms', ?2)");
  if (!put.ok()) return Status::Error(path_ + ": prepare store id: " + sqlite3_errmsg(db_), EIO);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  WEFT_RETURN_IF_ERROR(put.Text(1, id).Text(2, std::to_string(now_ms)).Run(path_ + ": write store id"));
  WEFT_RETURN_IF_ERROR(txn.Commit());
  store_id_ = id;
  return Status::Ok();
}

Status SqliteStore::CheckExisting(const std::string& data_dir) {
  const std::string found = path_ + " (" + std::to_string(FileSize(path_)) + " bytes)";
  const std::string todo =
      ". Refusing to start: an empty or unknown store would be pushed to every node and remove every service and "
      "policy. Restore weft.db from a backup; to start a new, empty store on purpose, move " + data_dir +
      " away and start once with --init";
  std::set<std::string> tables;
  {
    Stmt q(db_, "SELECT name FROM sqlite_master WHERE type = 'table'");
    if (!q.ok()) return Status::Error(found + " cannot be read: " + sqlite3_errmsg(db_) + todo, EIO);
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) tables.insert(q.ColText(0));
    if (rc != SQLITE_DONE) return Status::Error(found + " cannot be read: " + sqlite3_errmsg(db_) + todo, EIO);
  }
  if (tables.empty()) return Status::Error(found + " is empty: it holds no tables" + todo, ENODATA);
  if (!tables.count("meta") || !tables.count("resources"))
    return Status::Error(found + " is not a Weft store (no meta or resources table)" + todo, EINVAL);
  uint64_t revision = 0, resources = 0;
  {
    Stmt q(db_, "SELECT (SELECT value FROM meta WHERE key = 'revision'), (SELECT count(*) FROM resources)");
    if (!q.ok() || q.Step() != SQLITE_ROW)
      return Status::Error(found + " cannot be read: " + sqlite3_errmsg(db_) + todo, EIO);
    revision = q.ColInt(0);
    resources = q.ColInt(1);
  }
  if (tables.count("store_info")) {
    Stmt q(db_, "SELECT value FROM store_info WHERE key = 'id'");
    if (!q.ok()) return Status::Error(found + " cannot be read: " + sqlite3_errmsg(db_) + todo, EIO);
    if (q.Step() == SQLITE_ROW) store_id_ = q.ColText(0);
    if (store_id_.empty()) return Status::Error(found + " has no store id" + todo, EINVAL);
    return Status::Ok();
  }
  if (revision == 0 && resources == 0)
    return Status::Error(found + " holds an empty store (revision 0, no resources) that was never initialized" + todo,
                         ENODATA);
  // A store made before store ids: it holds data, so it is this cluster's; give it its id.
  Txn txn(db_);
  WEFT_RETURN_IF_ERROR(txn.Begin());
  WEFT_RETURN_IF_ERROR(Exec(kStoreInfoSchema));
  const std::string id = NewStoreId();
  Stmt put(db_, "INSERT INTO store_info(key, value) VALUES('id', ?1)");
  if (!put.ok()) return Status::Error(path_ + ": prepare store id: " + sqlite3_errmsg(db_), EIO);
  WEFT_RETURN_IF_ERROR(put.Text(1, id).Run(path_ + ": write store id"));
  WEFT_RETURN_IF_ERROR(txn.Commit());
  store_id_ = id;
  spdlog::warn("store {}: made before store ids (revision {}, {} resources): it is now store {}", path_, revision,
               resources, id);
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lk(ckpt_mu_);
    stopping_ = true;
  }
  ckpt_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  if (db_) sqlite3_close_v2(db_);
}

void SqliteStore::CheckpointLoop() {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
    spdlog::error("store {}: open for checkpoints: {}; the WAL will grow until restart", path_,
                  db ? sqlite3_errmsg(db) : "out of memory");
    if (db) sqlite3_close_v2(db);
    return;
  }
  sqlite3_busy_timeout(db, 1000);
  std::unique_lock lk(ckpt_mu_);
  for (;;) {
    ckpt_cv_.wait_for(lk, std::chrono::milliseconds(500), [this] { return stopping_; });
    const bool last = stopping_;
    lk.unlock();
    // A connection opens the WAL when it first reads the database; a
    // checkpoint on one that never read does nothing at all (this one did
    // not: weft.db stayed at 4 KiB while the WAL grew to 119 MB). A read
    // per round also follows a WAL that a writer restarted.
    int rc = sqlite3_exec(db, "SELECT value FROM meta WHERE key = 'revision'", nullptr, nullptr, nullptr);
    int log = 0, done = 0;
    // PASSIVE: copies what it can without waiting for (or blocking) writers.
    if (rc == SQLITE_OK) rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) spdlog::warn("store {}: WAL checkpoint: {}", path_, sqlite3_errmsg(db));
    if (rc == SQLITE_OK && FileSize(path_ + "-wal") > kWalTruncateBytes) {
      rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
      spdlog::info("store {}: WAL over {} MiB: TRUNCATE checkpoint: {}", path_, kWalTruncateBytes >> 20,
                   rc == SQLITE_OK ? "done" : sqlite3_errmsg(db));
    }
    lk.lock();
    if (last) break;
  }
  lk.unlock();
  sqlite3_close_v2(db);
}

Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Status::Error(path_ + ": " + msg, EIO);
  }
  return Status::Ok();
}

Status SqliteStore::Load() {
  std::unique_lock lock(mu_);
  {
    Stmt q(db_, "SELECT value FROM meta WHERE key = 'revision'");
    if (!q.ok() || q.Step() != SQLITE_ROW) return Status::Error(path_ + ": read revision: " + sqlite3_errmsg(db_), EIO);
    revision_ = q.ColInt(0);
  }
  Stmt q(db_, "SELECT kind, namespace, name, api_version, json, resource_version FROM resources");
  if (!q.ok()) return Status::Error(path_ + ": read resources: " + sqlite3_errmsg(db_), EIO);
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    config::Resource r;
    r.key = {q.ColText(0), q.ColText(1), q.ColText(2)};
    r.api_version = q.ColText(3);
    r.object = nlohmann::json::parse(q.ColText(4), nullptr, /*allow_exceptions=*/false);
    if (r.object.is_discarded())
      return Status::Error(path_ + ": " + r.key.ToString() + ": stored JSON does not parse", EIO);
    r.resource_version = q.ColInt(5);
    IndexServiceVips(r, vip_index_);
    objects_.emplace(r.key, std::move(r));
  }
  if (rc != SQLITE_DONE) return Status::Error(path_ + ": read resources: " + sqlite3_errmsg(db_), EIO);
  return Status::Ok();
}

Result<WriteResult> SqliteStore::Apply(const std::vector<config::Resource>& resources, bool dry_run) {
  std::unique_lock lock(mu_);
  WriteResult out;
  out.revision = revision_;
  std::set<config::ResourceKey> seen;
  VipIndex index = vip_index_;
  const uint64_t next = revision_ + 1;
  std::vector<std::pair<config::Resource, bool /*created*/>> writes;
  for (const auto& in : resources) {
    if (!seen.insert(in.key).second)
      return Status::Error(in.key.ToString() + ": appears more than once in one apply", EINVAL);
    config::Resource r = in;
    auto it = objects_.find(r.key);
    const config::Resource* prior = it == objects_.end() ? nullptr : &it->second;
    if (r.key.kind == "Service") {
      if (prior) IndexServiceVips(*prior, index, /*remove=*/true);
      WEFT_RETURN_IF_ERROR(vips_.Assign(r, prior, index));
    } else if (r.key.kind == "ServiceEntry") {
      WEFT_RETURN_IF_ERROR(vips_.Assign(r, prior, index));  // its addresses in the ServiceEntry CIDRs
    }
    Change c{r.key, ChangeAction::kCreated, 0};
    if (prior && SameObject(*prior, r)) {
      c.action = ChangeAction::kUnchanged;
      c.resource_version = prior->resource_version;
    } else {
      c.action = prior ? ChangeAction::kConfigured : ChangeAction::kCreated;
      c.resource_version = dry_run ? 0 : next;
      r.resource_version = next;
      writes.emplace_back(std::move(r), prior == nullptr);
    }
    out.changes.push_back(std::move(c));
  }
  if (dry_run) {
    for (auto& [r, created] : writes) {
      r.resource_version = 0;
      out.upserted.push_back(std::move(r));
    }
    return out;
  }
  if (writes.empty()) return out;

  Txn txn(db_);
  WEFT_RETURN_IF_ERROR(txn.Begin());
  Stmt up(db_,
          "INSERT INTO resources(kind, namespace, name, api_version, json, resource_version, created_revision, "
          "updated_revision) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6) "
          "ON CONFLICT(kind, namespace, name) DO UPDATE SET api_version = ?4, json = ?5, resource_version = ?6, "
          "updated_revision = ?6");
  Stmt rev(db_, "UPDATE meta SET value = ?1 WHERE key = 'revision'");
  if (!up.ok() || !rev.ok()) return Status::Error(path_ + ": prepare apply: " + sqlite3_errmsg(db_), EIO);
  for (const auto& [r, created] : writes) {
    WEFT_RETURN_IF_ERROR(up.Text(1, r.key.kind).Text(2, r.key.ns).Text(3, r.key.name).Text(4, r.api_version)
                             .Text(5, r.object.dump()).Int(6, next)
                             .Run(path_ + ": write " + r.key.ToString()));
  }
  WEFT_RETURN_IF_ERROR(rev.Int(1, next).Run(path_ + ": write revision"));
  WEFT_RETURN_IF_ERROR(txn.Commit());

  revision_ = next;
  out.revision = next;
  vip_index_ = std::move(index);
  for (auto& [r, created] : writes) {
    objects_[r.key] = r;
    out.upserted.push_back(std::move(r));
  }
  return out;
}

Result<WriteResult> SqliteStore::Delete(const std::vector<config::ResourceKey>& keys, bool dry_run) {
  std::unique_lock lock(mu_);
  WriteResult out;
  out.revision = revision_;
  std::set<config::ResourceKey> seen;
  const uint64_t next = revision_ + 1;
  for (const auto& k : keys) {
    auto it = objects_.find(k);
    if (it == objects_.end()) return Status::Error(k.ToString() + " not found", ENOENT);
    if (!seen.insert(k).second) continue;
    out.changes.push_back({k, ChangeAction::kDeleted, it->second.resource_version});
    out.deleted.push_back(k);
  }
  if (dry_run || out.deleted.empty()) return out;

  Txn txn(db_);
  WEFT_RETURN_IF_ERROR(txn.Begin());
  Stmt del(db_, "DELETE FROM resources WHERE kind = ?1 AND namespace = ?2 AND name = ?3");
  Stmt rev(db_, "UPDATE meta SET value = ?1 WHERE key = 'revision'");
  if (!del.ok() || !rev.ok()) return Status::Error(path_ + ": prepare delete: " + sqlite3_errmsg(db_), EIO);
  for (const auto& k : out.deleted)
    WEFT_RETURN_IF_ERROR(del.Text(1, k.kind).Text(2, k.ns).Text(3, k.name).Run(path_ + ": delete " + k.ToString()));
  WEFT_RETURN_IF_ERROR(rev.Int(1, next).Run(path_ + ": write revision"));
  WEFT_RETURN_IF_ERROR(txn.Commit());

  revision_ = next;
  out.revision = next;
  for (const auto& k : out.deleted) {
    auto it = objects_.find(k);
    IndexServiceVips(it->second, vip_index_, /*remove=*/true);
    objects_.erase(it);
  }
  return out;
}

std::optional<config::Resource> SqliteStore::Get(const config::ResourceKey& key) const {
  std::shared_lock lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

std::vector<config::Resource> SqliteStore::List(const std::string& kind, const std::string& ns) const {
  std::shared_lock lock(mu_);
  std::vector<config::Resource> out;
  for (const auto& [k, r] : objects_)
    if ((kind.empty() || k.kind == kind) && (ns.empty() || k.ns == ns)) out.push_back(r);
  return out;
}

uint64_t SqliteStore::Revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

std::vector<config::Resource> SqliteStore::LoadAll() const { return List("", ""); }

// --- StateStore ------------------------------------------------------------------

Result<std::map<std::string, std::string>> SqliteStore::LoadState(const std::string& prefix) const {
  std::unique_lock lock(mu_);  // the connection is shared with writers
  Stmt q(db_, "SELECT key, value FROM state WHERE substr(key, 1, length(?1)) = ?1");
  if (!q.ok()) return Status::Error(path_ + ": read state " + prefix + ": " + sqlite3_errmsg(db_), EIO);
  q.Text(1, prefix);
  std::map<std::string, std::string> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.emplace(q.ColText(0), q.ColText(1));
  if (rc != SQLITE_DONE) return Status::Error(path_ + ": read state " + prefix + ": " + sqlite3_errmsg(db_), EIO);
  return out;
}

Status SqliteStore::WriteState(const std::map<std::string, std::optional<std::string>>& records) {
  if (records.empty()) return Status::Ok();
  std::unique_lock lock(mu_);
  Txn txn(db_);
  WEFT_RETURN_IF_ERROR(txn.Begin());
  Stmt up(db_, "INSERT INTO state(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
  Stmt del(db_, "DELETE FROM state WHERE key = ?1");
  if (!up.ok() || !del.ok()) return Status::Error(path_ + ": prepare state write: " + sqlite3_errmsg(db_), EIO);
  for (const auto& [key, value] : records) {
    if (value) {
      WEFT_RETURN_IF_ERROR(up.Text(1, key).Text(2, *value).Run(path_ + ": write state " + key));
    } else {
      WEFT_RETURN_IF_ERROR(del.Text(1, key).Run(path_ + ": delete state " + key));
    }
  }
  return txn.Commit();
}

}  // namespace weft::controller
