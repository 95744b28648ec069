// SqliteStore and VipAllocator: durability, all-or-nothing batches, unchanged
// re-applies, VIP allocation (keep, collide, dual-stack, exhaust). No gRPC.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>

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

std::unique_ptr<SqliteStore> OpenStore(const std::string& dir, const std::string& v4 = "10.96.0.0/16",
                                       const std::string& v6 = "fd00:96::/112") {
  auto vips = VipAllocator::Create(v4, v6);
  EXPECT_TRUE(vips.ok()) << vips.status().message();
  auto s = SqliteStore::Open(dir, std::move(*vips));
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
  EXPECT_EQ(FileSize(dir.path() + "/weft.db-wal"), wal);
  EXPECT_EQ(FileSize(dir.path() + "/weft.db"), db);
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
