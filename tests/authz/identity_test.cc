// IdentityAllocator: numbering (reserved range, determinism, durability) and
// the identity cache (workload host entries, CIDR refinement, CIDR identities).
#include <gtest/gtest.h>

#include <algorithm>

#include "authz/identity.hpp"
#include "weft/bpf_abi.h"
#include "tests/authz/authz_test_util.hpp"

namespace weft::authz {
namespace {

using namespace testing;  // NOLINT

const std::string kCidrPolicy = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ips
  namespace: foo
spec:
  rules:
  - from:
    - source:
        ipBlocks: ["10.0.0.0/8", "10.0.1.0/24", "10.0.1.7"]
        notIpBlocks: ["fd00::/64"]
    when:
    - key: source.ip
      values: ["192.168.0.0/16"]
)";

std::vector<Workload> Workloads() {
  return {MakeWorkload("foo", "a", "a", "sa-a", {"10.0.1.1", "172.16.0.1"}),
          MakeWorkload("foo", "b", "b", "sa-a", {"10.0.2.1"}),
          MakeWorkload("bar", "c", "c", "", {"fd00::1"}),
          MakeWorkload("bar", "d", "d", "sa-d", {"10.0.1.7"})};
}

const IdentityInfo& Info(const IdentityTable& t, const IpAddr& ip) {
  const IdentityInfo* info = t.Find(t.Resolve(ip));
  if (!info) throw std::runtime_error("no identity for " + ip.ToString());
  return *info;
}

TEST(IdentityAllocator, CacheAndRefinement) {
  IdentityTable t = IdentityAllocator().Allocate(Workloads(), Policies(kCidrPolicy));
  for (const auto& [id, info] : t.by_id) EXPECT_GE(id, static_cast<uint32_t>(WEFT_IDENTITY_FIRST_DYNAMIC));

  struct Row {
    std::string ip;
    std::string ns, sa;  // "" = CIDR-only
    std::set<std::string> cidrs;
  };
  const std::vector<Row> rows = {
      {"10.0.1.1", "foo", "sa-a", {"10.0.0.0/8", "10.0.1.0/24"}},
      {"172.16.0.1", "foo", "sa-a", {}},
      {"10.0.2.1", "foo", "sa-a", {"10.0.0.0/8"}},
      {"fd00::1", "bar", "default", {"fd00::/64"}},
      {"10.0.1.7", "bar", "sa-d", {"10.0.0.0/8", "10.0.1.0/24", "10.0.1.7/32"}},
      {"10.0.1.99", "", "", {"10.0.0.0/8", "10.0.1.0/24"}},
      {"10.200.0.1", "", "", {"10.0.0.0/8"}},
      {"192.168.3.4", "", "", {"192.168.0.0/16"}},
      {"fd00::99", "", "", {"fd00::/64"}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.ip);
    const IdentityInfo& info = Info(t, Ip(row.ip));
    EXPECT_EQ(info.ns, row.ns);
    EXPECT_EQ(info.sa, row.sa);
    EXPECT_EQ(info.cidrs, row.cidrs);
    EXPECT_EQ(info.spiffe_id, row.ns.empty() ? "" : SpiffeId("cluster.local", row.ns, row.sa));
  }
  // Same (ns, sa), different CIDR sets: different identities.
  EXPECT_NE(t.Resolve(Ip("10.0.1.1")), t.Resolve(Ip("10.0.2.1")));
  EXPECT_NE(t.Resolve(Ip("10.0.1.1")), t.Resolve(Ip("172.16.0.1")));
  // Outside every workload and policy CIDR.
  EXPECT_EQ(t.Resolve(Ip("172.16.0.2")), static_cast<uint32_t>(WEFT_IDENTITY_UNKNOWN));
  EXPECT_EQ(t.Resolve(Ip("8.8.8.8")), static_cast<uint32_t>(WEFT_IDENTITY_UNKNOWN));

  // Cache: 5 workload host entries + 5 policy prefixes, 10.0.1.7/32 shared (the workload's).
  EXPECT_EQ(t.cache.size(), 9u);
  auto host = std::find_if(t.cache.begin(), t.cache.end(),
                           [](const IdentityCacheEntry& e) { return e.prefix.ToString() == "10.0.1.7/32"; });
  ASSERT_NE(host, t.cache.end());
  EXPECT_EQ(t.Find(host->identity)->sa, "sa-d");
  auto v4 = std::find_if(t.cache.begin(), t.cache.end(),
                         [](const IdentityCacheEntry& e) { return e.prefix.ToString() == "10.0.1.0/24"; });
  ASSERT_NE(v4, t.cache.end());
  EXPECT_EQ(v4->AbiPrefixLen(), 120u);
  auto v6 = std::find_if(t.cache.begin(), t.cache.end(),
                         [](const IdentityCacheEntry& e) { return e.prefix.ToString() == "fd00::/64"; });
  ASSERT_NE(v6, t.cache.end());
  EXPECT_EQ(v6->AbiPrefixLen(), 64u);
}

TEST(IdentityAllocator, DeterministicAndDurable) {
  auto policies = Policies(kCidrPolicy);
  auto workloads = Workloads();
  IdentityTable first = IdentityAllocator().Allocate(workloads, policies);

  // Input order does not matter.
  auto reversed = workloads;
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(IdentityAllocator().Allocate(reversed, policies).ids, first.ids);

  // A restart given the previous table keeps every number.
  EXPECT_EQ(IdentityAllocator().Allocate(workloads, policies, first.ids).ids, first.ids);

  // A new workload: old keys keep their numbers, the new key gets a fresh one.
  auto more = workloads;
  more.push_back(MakeWorkload("baz", "e", "e", "sa-e", {"10.0.3.1"}));
  IdentityTable second = IdentityAllocator().Allocate(more, policies, first.ids);
  for (const auto& [k, id] : first.ids) EXPECT_EQ(second.ids.at(k), id) << k.ToString();
  uint32_t max_first = 0;
  for (const auto& [k, id] : first.ids) max_first = std::max(max_first, id);
  EXPECT_GT(second.ids.at(IdentityKey{"baz", "sa-e", {}}), max_first);

  // Removed keys disappear; a number from `previous` is never given to another key.
  IdentityTable third = IdentityAllocator().Allocate({workloads[0]}, policies, second.ids);
  EXPECT_FALSE(third.ids.contains(IdentityKey{"baz", "sa-e", {}}));
  for (const auto& [k, id] : third.ids) {
    auto it = second.ids.find(k);
    if (it != second.ids.end()) {
      EXPECT_EQ(it->second, id);
    } else {
      EXPECT_GT(id, max_first);
    }
  }
  // Without previous, numbering is a pure function of the inputs.
  EXPECT_EQ(IdentityAllocator().Allocate(workloads, policies).ids, first.ids);
}

TEST(IdentityAllocator, TrustDomain) {
  IdentityTable t = IdentityAllocator("example.org").Allocate(Workloads(), {});
  EXPECT_EQ(Info(t, Ip("10.0.2.1")).spiffe_id, "spiffe://example.org/ns/foo/sa/sa-a");
  EXPECT_TRUE(Info(t, Ip("10.0.2.1")).cidrs.empty());
  EXPECT_EQ(t.cache.size(), 5u);  // host entries only
}

}  // namespace
}  // namespace weft::authz
