// SqliteStore and VipAllocator: durability, all-or-nothing batches, unchanged
// re-applies, VIP allocation (keep, collide, dual-stack, exhaust). No gRPC.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "controller/kinds.hpp"
#include "controller/sqlite_store.hpp"
#include "controller/unified_diff.hpp"
#include "controller/vip_allocator.hpp"
#include "test_util.hpp"

namespace weft::controller {
namespace {

using testing::MakeService;
using testing::MakeVirtualService;
using testing::TempDir;

// Opens the store of `dir`, creating it (init) if the dir holds none yet.
std::unique_ptr<SqliteStore> OpenStore(const std::string& dir, const std::string& v4 = "10.96.0.0/16",
                                       const std::string& v6 = "fd00:96::/112") {
  auto vips = VipAllocator::Create(v4, v6);
  EXPECT_TRUE(vips.ok()) << vips.status().message();
  const bool init = !std::filesystem::exists(dir + "/weft.db");
  auto s = SqliteStore::Open(dir, std::move(*vips), init);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(*s) : nullptr;
}

std::string ClusterIP(const Store& s, const std::string& ns, const std::string& name) {
  auto r = s.Get({"Service", ns, name});
  if (!r) return "<absent>";
  return r->object["spec"].value("clusterIP", "<none>");
}

off_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(SqliteStore, ApplyCloseReopenKeepsEverythingWithVersions) {
  TempDir dir;
  uint64_t rev = 0, vs_version = 0;
  {
    auto s = OpenStore(dir.path());
    auto r = s->Apply({MakeService("default", "reviews"), MakeVirtualService("default", "reviews", "reviews")}, false);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->revision, 1u);
    ASSERT_EQ(r->changes.size(), 2u);
    EXPECT_EQ(r->changes[0].action, ChangeAction::kCreated);
    EXPECT_EQ(r->changes[0].resource_version, 1u);
    auto r2 = s->Apply({MakeVirtualService("default", "reviews", "ratings")}, false);
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(r2->changes[0].action, ChangeAction::kConfigured);
    rev = s->Revision();
    vs_version = r2->changes[0].resource_version;
    EXPECT_EQ(rev, 2u);
    EXPECT_EQ(vs_version, 2u);
  }
  auto s = OpenStore(dir.path());
  EXPECT_EQ(s->Revision(), rev);
  auto all = s->LoadAll();
  ASSERT_EQ(all.size(), 2u);
  auto svc = s->Get({"Service", "default", "reviews"});
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->resource_version, 1u);
  EXPECT_EQ(svc->object["spec"]["clusterIP"], "10.96.0.1");
  auto vs = s->Get({"VirtualService", "default", "reviews"});
  ASSERT_TRUE(vs);
  EXPECT_EQ(vs->resource_version, vs_version);
  EXPECT_EQ(vs->object["spec"]["hosts"][0], "ratings");
  EXPECT_EQ(vs->api_version, "networking.istio.io/v1beta1");
}

TEST(SqliteStore, FailingDocumentInABatchChangesNothing) {
  TempDir dir;
  {
    auto s = OpenStore(dir.path());
    ASSERT_TRUE(s->Apply({MakeService("default", "a", {{"clusterIP", "10.96.0.10"}})}, false).ok());
    // b is fine, c collides with a: neither may be stored, the revision stays.
    auto r = s->Apply({MakeService("default", "b"), MakeService("default", "c", {{"clusterIP", "10.96.0.10"}})}, false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().err(), EEXIST);
    EXPECT_EQ(s->Revision(), 1u);
    EXPECT_FALSE(s->Get({"Service", "default", "b"}));
    // A duplicate key in one batch is rejected the same way.
    auto d = s->Apply({MakeService("default", "x"), MakeService("default", "x")}, false);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().err(), EINVAL);
  }
  auto s = OpenStore(dir.path());
  EXPECT_EQ(s->Revision(), 1u);
  EXPECT_EQ(s->LoadAll().size(), 1u);
}

TEST(SqliteStore, UnchangedReapplyWritesNothing) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "a"), MakeVirtualService("default", "v", "a")}, false).ok());
  const off_t wal = FileSize(dir.path() + "/weft.db-wal");
  const off_t db = FileSize(dir.path() + "/weft.db");
  auto r = s->Apply({MakeService("default", "a"), MakeVirtualService("default", "v", "a")}, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 1u);
  EXPECT_FALSE(r->changed());
  for (const auto& c : r->changes) {
    EXPECT_EQ(c.action, ChangeAction::kUnchanged) << c.key.ToString();
    EXPECT_EQ(c.resource_version, 1u);
  }
  // Every write goes to the WAL first; weft.db itself is written only by the
  // checkpointer (copying the first apply), so only the WAL can show a write.
  EXPECT_EQ(FileSize(dir.path() + "/weft.db-wal"), wal);
  EXPECT_GE(FileSize(dir.path() + "/weft.db"), db);
}

TEST(SqliteStore, DryRunWritesNothing) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  auto r = s->Apply({MakeService("default", "a")}, /*dry_run=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->changes[0].action, ChangeAction::kCreated);
  ASSERT_EQ(r->upserted.size(), 1u);
  EXPECT_EQ(r->upserted[0].object["spec"]["clusterIP"], "10.96.0.1");  // what it would get
  EXPECT_EQ(s->Revision(), 0u);
  EXPECT_FALSE(s->Get({"Service", "default", "a"}));
}

TEST(SqliteStore, DeleteIsAllOrNothingAndNamesTheAbsentResource) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "a"), MakeService("default", "b")}, false).ok());
  auto r = s->Delete({{"Service", "default", "a"}, {"Service", "default", "nope"}}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), ENOENT);
  EXPECT_NE(r.status().message().find("Service default/nope"), std::string::npos) << r.status().message();
  EXPECT_TRUE(s->Get({"Service", "default", "a"}));
  auto ok = s->Delete({{"Service", "default", "a"}}, false);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->revision, 2u);
  EXPECT_EQ(ok->changes[0].action, ChangeAction::kDeleted);
  EXPECT_FALSE(s->Get({"Service", "default", "a"}));
  // Its VIP is free again: the next Service gets the lowest free address.
  ASSERT_TRUE(s->Apply({MakeService("default", "c")}, false).ok());
  EXPECT_EQ(ClusterIP(*s, "default", "c"), "10.96.0.1");
}

TEST(SqliteStore, SecondOpenOfTheSameDataDirIsRefused) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  auto vips = VipAllocator::Create("10.96.0.0/16", "fd00:96::/112");
  auto again = SqliteStore::Open(dir.path(), std::move(*vips));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("another weft-controller"), std::string::npos);
}

// ---- never fail open (issue 9 item 5) ----

Result<std::unique_ptr<SqliteStore>> TryOpen(const std::string& dir, bool init) {
  auto vips = VipAllocator::Create("10.96.0.0/16", "fd00:96::/112");
  EXPECT_TRUE(vips.ok());
  return SqliteStore::Open(dir, std::move(*vips), init);
}

int Mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A store that holds data, then closed (the WAL checkpointed into weft.db on close).
void MakeStoreWithData(const std::string& data) {
  auto s = TryOpen(data, true);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE((*s)->Apply({MakeService("default", "reviews")}, false).ok());
}

// Every way a data dir can be without a usable store: the controller refuses
// to start, says what it found and what to do, and writes nothing.
TEST(NeverFailOpen, AStoreThatIsNotThereOrNotUsableIsRefused) {
  struct Row {
    const char* name;
    std::function<void(const std::string& data)> make;  // prepares <tmp>/data
    bool init;
    std::vector<std::string> message;  // substrings of the refusal
  };
  const std::vector<Row> rows = {
      {"missing data dir", [](const std::string&) {}, false, {"does not exist", "--init"}},
      {"data dir without weft.db", [](const std::string& d) { std::filesystem::create_directories(d); }, false,
       {"holds no weft.db", "--init", "restore weft.db"}},
      {"emptied weft.db (0 bytes)",
       [](const std::string& d) {
         MakeStoreWithData(d);
         WriteBytes(d + "/weft.db", "");
         std::filesystem::remove(d + "/weft.db-wal");
         std::filesystem::remove(d + "/weft.db-shm");
       },
       false, {"weft.db (0 bytes) is empty", "Refusing to start", "--init"}},
      {"garbage weft.db",
       [](const std::string& d) {
         std::filesystem::create_directories(d);
         WriteBytes(d + "/weft.db", std::string(8192, 'x'));
       },
       false, {"weft.db (8192 bytes) cannot be read", "not a database", "Refusing to start"}},
      {"another SQLite database",
       [](const std::string& d) {
         std::filesystem::create_directories(d);
         sqlite3* db = nullptr;
         sqlite3_open((d + "/weft.db").c_str(), &db);
         sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
         sqlite3_close(db);
       },
       false, {"is not a Weft store", "Refusing to start"}},
      {"an empty store made by an older controller",
       [](const std::string& d) {
         std::filesystem::create_directories(d);
         sqlite3* db = nullptr;
         sqlite3_open((d + "/weft.db").c_str(), &db);
         sqlite3_exec(db,
                      "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                      "CREATE TABLE resources(kind TEXT, namespace TEXT, name TEXT, api_version TEXT, json TEXT, "
                      "resource_version INTEGER, created_revision INTEGER, updated_revision INTEGER);"
                      "INSERT INTO meta VALUES('revision', 0);",
                      nullptr, nullptr, nullptr);
         sqlite3_close(db);
       },
       false, {"holds an empty store (revision 0, no resources)", "--init"}},
      {"--init over an existing store", [](const std::string& d) { MakeStoreWithData(d); }, true,
       {"--init:", "already exists", "only creates a new store"}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    TempDir dir;
    const std::string data = dir.path() + "/data";
    row.make(data);
    if (HasFatalFailure()) return;
    const auto before = std::filesystem::exists(data + "/weft.db") ? FileSize(data + "/weft.db") : -1;
    auto s = TryOpen(data, row.init);
    ASSERT_FALSE(s.ok()) << "opened";
    for (const auto& m : row.message)
      EXPECT_NE(s.status().message().find(m), std::string::npos) << "no \"" << m << "\" in: " << s.status().message();
    EXPECT_EQ(std::filesystem::exists(data + "/weft.db") ? FileSize(data + "/weft.db") : -1, before)
        << "weft.db changed";
  }
}

// --init makes a store with a random id; the id survives restarts; a store
// made before ids existed (holding data) gets one. Files 0600, dir 0700.
TEST(NeverFailOpen, InitMakesAStoreWhoseIdSurvivesRestarts) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::string id;
  {
    auto s = TryOpen(data, true);
    ASSERT_TRUE(s.ok()) << s.status().message();
    id = (*s)->store_id();
    EXPECT_EQ(id.size(), 32u) << id;
    ASSERT_TRUE((*s)->Apply({MakeService("default", "reviews")}, false).ok());
    EXPECT_EQ(Mode(data), 0700);
    for (const char* f : {"/weft.db", "/weft.db-wal", "/weft.db-shm", "/weft.lock"})
      EXPECT_EQ(Mode(data + f), 0600) << f;
  }
  {
    auto s = TryOpen(data, false);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ((*s)->store_id(), id);
    EXPECT_EQ((*s)->Revision(), 1u);
  }
  TempDir other;
  auto s2 = TryOpen(other.path() + "/data", true);
  ASSERT_TRUE(s2.ok());
  EXPECT_NE((*s2)->store_id(), id) << "two stores, one id";
  s2 = Status::Error("closed");

  // A store of an older controller: data, no id, files 0644 in a 0755 dir.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((data + "/weft.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE store_info", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ::chmod((data + "/weft.db").c_str(), 0644);
  ::chmod(data.c_str(), 0755);
  auto old = TryOpen(data, false);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ((*old)->store_id().size(), 32u);
  EXPECT_NE((*old)->store_id(), id);
  EXPECT_EQ((*old)->Revision(), 1u);
  EXPECT_EQ(Mode(data), 0700);
  EXPECT_EQ(Mode(data + "/weft.db"), 0600);
}

// ---- the WAL checkpoint (issue 9 item 6) ----

// The revision that a copy of weft.db alone (no -wal, no -shm) holds; -1 if
// the copy cannot be read (a page copied while the checkpointer wrote it).
int64_t RevisionOfDbAlone(const std::string& db_path, const std::string& scratch) {
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);
  std::filesystem::create_directories(scratch);
  const std::string copy = scratch + "/copy.db";
  std::filesystem::copy_file(db_path, copy, ec);
  if (ec) return -1;
  sqlite3* db = nullptr;
  int64_t rev = -1;
  if (sqlite3_open_v2(copy.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'revision'", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      rev = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return rev;
}

// Applies revisions in bursts (each ~30 KB of JSON); after each burst a copy
// of weft.db alone holds the latest revision within seconds, and the WAL
// never holds much more than one burst. Before the fix the checkpointer's
// connection had never read the database, so its checkpoints did nothing:
// the copy stayed at revision 0 and the WAL grew by every write.
TEST(WalCheckpoint, DbAloneHoldsTheLatestRevisionAndTheWalStaysBounded) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  const std::string db = dir.path() + "/weft.db", wal = db + "-wal";
  constexpr int kBursts = 20, kPerBurst = 10;
  int64_t max_wal = 0, written = 0;
  int stale_at = -1;  // the first burst after which weft.db alone was behind
  for (int b = 0; b < kBursts; ++b) {
    for (int i = 0; i < kPerBurst; ++i) {
      const std::string note(30000, static_cast<char>('a' + (b * kPerBurst + i) % 26));
      auto svc = MakeService("default", "big-" + std::to_string(i));
      svc.object["metadata"]["annotations"] = {{"note", note}};
      ASSERT_TRUE(s->Apply({svc}, false).ok());
      written += static_cast<int64_t>(note.size());  // a lower bound of what reached the WAL
      max_wal = std::max<int64_t>(max_wal, FileSize(wal));
    }
    const int64_t want = static_cast<int64_t>(s->Revision());
    if (stale_at >= 0) continue;  // already failed: keep writing to measure the WAL, do not wait again
    int64_t got = -1;
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < end;) {
      if ((got = RevisionOfDbAlone(db, dir.path() + "/scratch")) == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (got != want) {
      stale_at = b;
      ADD_FAILURE() << "after burst " << b << ": a copy of weft.db alone is at revision " << got
                    << " (-1: unreadable), the store at " << want << "; weft.db " << FileSize(db) << " bytes, WAL "
                    << FileSize(wal) << " bytes";
    }
  }
  std::printf("WAL: at least %lld bytes written over %d revisions; largest WAL %lld bytes; weft.db %lld bytes\n",
              static_cast<long long>(written), kBursts * kPerBurst, static_cast<long long>(max_wal),
              static_cast<long long>(FileSize(db)));
  EXPECT_GE(written, 5 << 20) << "the test wrote less than it means to";
  EXPECT_LT(max_wal, 4 << 20) << "the WAL grew past one burst";
}

// ---- VIP allocation ----

TEST(VipAllocation, AllocatesInOrderAndKeepsOnReapply) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "a"), MakeService("default", "b")}, false).ok());
  EXPECT_EQ(ClusterIP(*s, "default", "a"), "10.96.0.1");
  EXPECT_EQ(ClusterIP(*s, "default", "b"), "10.96.0.2");
  auto a = s->Get({"Service", "default", "a"});
  EXPECT_EQ(a->object["spec"]["clusterIPs"], nlohmann::json::array({"10.96.0.1"}));
  EXPECT_EQ(a->object["spec"]["ipFamilies"], nlohmann::json::array({"IPv4"}));
  // Re-applying without clusterIP keeps the VIP and counts as unchanged;
  // applying b and a in the other order changes nothing either.
  auto r = s->Apply({MakeService("default", "b"), MakeService("default", "a")}, false);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(ClusterIP(*s, "default", "a"), "10.96.0.1");
  // A real change keeps the VIP too.
  auto c = s->Apply({MakeService("default", "a", {{"ports", {{{"name", "grpc"}, {"port", 9090}}}}})}, false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->changes[0].action, ChangeAction::kConfigured);
  EXPECT_EQ(ClusterIP(*s, "default", "a"), "10.96.0.1");
}

TEST(VipAllocation, IsDurableAcrossRestart) {
  TempDir dir;
  { ASSERT_TRUE(OpenStore(dir.path())->Apply({MakeService("default", "a")}, false).ok()); }
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "b")}, false).ok());
  EXPECT_EQ(ClusterIP(*s, "default", "a"), "10.96.0.1");
  EXPECT_EQ(ClusterIP(*s, "default", "b"), "10.96.0.2");
}

TEST(VipAllocation, UserGivenClusterIPIsKeptAndSkipped) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "fixed", {{"clusterIP", "10.96.0.1"}}), MakeService("default", "auto")},
                       false)
                  .ok());
  EXPECT_EQ(ClusterIP(*s, "default", "fixed"), "10.96.0.1");
  EXPECT_EQ(ClusterIP(*s, "default", "auto"), "10.96.0.2");
}

TEST(VipAllocation, CollisionNamesBothServices) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("shop", "cart")}, false).ok());
  auto r = s->Apply({MakeService("default", "thief", {{"clusterIP", "10.96.0.1"}})}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EEXIST);
  const std::string m = r.status().message();
  EXPECT_NE(m.find("Service default/thief"), std::string::npos) << m;
  EXPECT_NE(m.find("Service shop/cart"), std::string::npos) << m;
  EXPECT_NE(m.find("10.96.0.1"), std::string::npos) << m;
}

TEST(VipAllocation, DualStackGetsBothFamilies) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "v4only"),
                        MakeService("default", "dual", {{"ipFamilyPolicy", "PreferDualStack"}}),
                        MakeService("default", "v6first", {{"ipFamilies", {"IPv6", "IPv4"}},
                                                           {"ipFamilyPolicy", "RequireDualStack"}}),
                        MakeService("default", "v6only", {{"ipFamilies", {"IPv6"}}})},
                       false)
                  .ok());
  auto dual = s->Get({"Service", "default", "dual"});
  EXPECT_EQ(dual->object["spec"]["clusterIPs"], nlohmann::json::array({"10.96.0.2", "fd00:96::1"}));
  EXPECT_EQ(dual->object["spec"]["ipFamilies"], nlohmann::json::array({"IPv4", "IPv6"}));
  auto v6first = s->Get({"Service", "default", "v6first"});
  EXPECT_EQ(v6first->object["spec"]["clusterIPs"], nlohmann::json::array({"fd00:96::2", "10.96.0.3"}));
  EXPECT_EQ(v6first->object["spec"]["clusterIP"], "fd00:96::2");
  auto v6only = s->Get({"Service", "default", "v6only"});
  EXPECT_EQ(v6only->object["spec"]["clusterIPs"], nlohmann::json::array({"fd00:96::3"}));
  // Re-apply: unchanged.
  auto r = s->Apply({MakeService("default", "dual", {{"ipFamilyPolicy", "PreferDualStack"}})}, false);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed());
  // Upgrading a single-stack Service to dual-stack keeps its IPv4 VIP.
  auto up = s->Apply({MakeService("default", "v4only", {{"ipFamilyPolicy", "PreferDualStack"}})}, false);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(s->Get({"Service", "default", "v4only"})->object["spec"]["clusterIPs"],
            nlohmann::json::array({"10.96.0.1", "fd00:96::4"}));
}

TEST(VipAllocation, HeadlessAndExternalNameGetNone) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  ASSERT_TRUE(s->Apply({MakeService("default", "h", {{"clusterIP", "None"}}),
                        MakeService("default", "x", {{"type", "ExternalName"}, {"externalName", "example.com"}})},
                       false)
                  .ok());
  EXPECT_EQ(ClusterIP(*s, "default", "h"), "None");
  EXPECT_EQ(ClusterIP(*s, "default", "x"), "<none>");
}

TEST(VipAllocation, ExhaustedCidrIsAnErrorAndChangesNothing) {
  TempDir dir;
  auto s = OpenStore(dir.path(), "10.96.0.0/30", "fd00:96::/126");  // .1 and .2 usable
  ASSERT_TRUE(s->Apply({MakeService("default", "a"), MakeService("default", "b")}, false).ok());
  auto r = s->Apply({MakeService("default", "c")}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), ENOSPC);
  EXPECT_NE(r.status().message().find("10.96.0.0/30"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("Service default/c"), std::string::npos) << r.status().message();
  EXPECT_EQ(s->Revision(), 1u);
  // v6 /126: ::1, ::2, ::3 usable (no broadcast in IPv6).
  ASSERT_TRUE(s->Delete({{"Service", "default", "b"}}, false).ok());
  auto six = s->Apply({MakeService("default", "d", {{"ipFamilies", {"IPv6"}}}),
                       MakeService("default", "e", {{"ipFamilies", {"IPv6"}}}),
                       MakeService("default", "f", {{"ipFamilies", {"IPv6"}}})},
                      false);
  ASSERT_TRUE(six.ok()) << six.status().message();
  auto seven = s->Apply({MakeService("default", "g", {{"ipFamilies", {"IPv6"}}})}, false);
  EXPECT_FALSE(seven.ok());
}

// VIPs outside the ranges agents accept are refused at apply time, so they
// never reach an agent (which would NACK the whole push): a clusterIP outside
// the service CIDR (as kube-apiserver refuses it), and a ServiceEntry address
// (compiled into a VIP) outside the ServiceEntry CIDRs.
TEST(VipAllocation, VipsOutsideTheAgentsRangesAreRefused) {
  TempDir dir;
  auto s = OpenStore(dir.path());
  auto se = [](const std::string& name, nlohmann::json addresses, const std::string& resolution = "STATIC") {
    config::Resource r;
    r.api_version = "networking.istio.io/v1beta1";
    r.key = {"ServiceEntry", "default", name};
    r.object = {{"apiVersion", r.api_version},
                {"kind", "ServiceEntry"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"hosts", {name + ".example.com"}},
                  {"addresses", addresses},
                  {"resolution", resolution},
                  {"ports", {{{"number", 443}, {"name", "tls"}, {"protocol", "TLS"}}}}}}};
    return r;
  };
  struct Row {
    const char* name;
    config::Resource r;
    const char* error;  // "" = accepted
  } rows[] = {
      {"clusterIP in the CIDR", MakeService("default", "in", {{"clusterIP", "10.96.7.7"}}), ""},
      {"clusterIP outside", MakeService("default", "out", {{"clusterIP", "192.168.7.1"}}),
       "Service default/out: spec.clusterIPs[0]: 192.168.7.1 is not in the service CIDR 10.96.0.0/16 "
       "(--service-cidr); agents refuse VIPs outside it"},
      {"v6 clusterIP outside", MakeService("default", "out6", {{"clusterIP", "fd00:1::1"}}),
       "is not in the service CIDR fd00:96::/112 (--service-cidr-v6)"},
      {"ServiceEntry in the ServiceEntry CIDR", se("ok", {"240.240.0.9", "2001:2::9"}), ""},
      {"ServiceEntry CIDR addresses (no VIP)", se("cidr", {"192.0.2.0/24"}), ""},
      {"ServiceEntry DNS resolution (no VIP)", se("dns", {"192.0.2.10"}, "DNS"), ""},
      {"ServiceEntry address outside", se("ext", {"240.240.0.10", "192.0.2.10"}),
       "ServiceEntry default/ext: spec.addresses[1]: 192.0.2.10 is outside the ServiceEntry CIDR 240.240.0.0/16 "
       "(--service-entry-cidr)"},
      {"ServiceEntry address in the service CIDR", se("svc", {"10.96.0.200"}),
       "10.96.0.200 is outside the ServiceEntry CIDR 240.240.0.0/16"},
  };
  for (auto& row : rows) {
    SCOPED_TRACE(row.name);
    const uint64_t rev = s->Revision();
    auto r = s->Apply({row.r}, false);
    if (std::string(row.error).empty()) {
      EXPECT_TRUE(r.ok()) << r.status().message();
      continue;
    }
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().err(), EINVAL);
    EXPECT_NE(r.status().message().find(row.error), std::string::npos) << r.status().message();
    EXPECT_EQ(s->Revision(), rev);
  }
  // The two ranges may not overlap (a ServiceEntry address could take an allocated VIP).
  EXPECT_FALSE(VipAllocator::Create("10.96.0.0/16", "fd00:96::/112", "10.96.128.0/24", "2001:2::/48").ok());
}

TEST(VipAllocation, BadCidrsAreRefused) {
  EXPECT_FALSE(VipAllocator::Create("10.96.0.0/31", "fd00:96::/112").ok());
  EXPECT_FALSE(VipAllocator::Create("fd00::/112", "fd00:96::/112").ok());
  EXPECT_FALSE(VipAllocator::Create("10.96.0.0/16", "10.0.0.0/8").ok());
  EXPECT_FALSE(VipAllocator::Create("banana", "fd00:96::/112").ok());
}

// ---- small pieces of the Admin service ----

TEST(Kinds, AcceptsKindPluralShortAnyCase) {
  struct Row {
    const char* in;
    const char* want;
  } rows[] = {{"vs", "VirtualService"},          {"VirtualService", "VirtualService"},
              {"virtualservices", "VirtualService"}, {"VIRTUALSERVICE", "VirtualService"},
              {"dr", "DestinationRule"},        {"svc", "Service"},
              {"services", "Service"},          {"se", "ServiceEntry"},
              {"ap", "AuthorizationPolicy"},    {"ns", "Namespace"}};
  for (const auto& r : rows) {
    auto k = ResolveKind(r.in);
    ASSERT_TRUE(k.ok()) << r.in;
    EXPECT_EQ(*k, r.want) << r.in;
  }
  auto bad = ResolveKind("frobnicator");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().err(), EINVAL);
  EXPECT_NE(bad.status().message().find("VirtualService"), std::string::npos);
  EXPECT_NE(bad.status().message().find("frobnicator"), std::string::npos);
}

TEST(UnifiedDiff, ShowsChangedLinesWithContext) {
  EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n", "x", "y"), "");
  std::string d = UnifiedDiff("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nD\ne\nf\ng\nh\n", "old", "new");
  EXPECT_EQ(d, "--- old\n+++ new\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n");
  std::string created = UnifiedDiff("", "x: 1\n", "none", "new");
  EXPECT_EQ(created, "--- none\n+++ new\n@@ -0,0 +1,1 @@\n+x: 1\n");
}

}  // namespace
}  // namespace weft::controller
