// IdentityIndex (the incremental IdentityAllocator) as a property: after any
// sequence of workload and policy-CIDR changes, the identities in use, their
// numbers and the identity cache equal IdentityAllocator::Allocate over the
// same inputs (with the index's known numbers as `previous`), and each
// Commit's Changes name exactly the cache prefixes and identities that differ.
#include <gtest/gtest.h>

#include <random>

#include "authz/identity_index.hpp"
#include "tests/authz/authz_test_util.hpp"
#include "weft/bpf_abi.h"

namespace weft::authz {
namespace {

using namespace testing;  // NOLINT

const std::vector<std::string> kIps = {"10.0.1.1", "10.0.1.2", "10.0.1.130", "10.0.2.1", "10.1.0.1",
                                       "172.16.0.1", "fd00::1", "fd01::1"};
const std::vector<std::string> kCidrs = {"10.0.0.0/8", "10.0.0.0/16", "10.0.1.0/24", "10.0.1.128/25",
                                         "10.0.1.1",   "192.168.0.0/16", "fd00::/64", "0.0.0.0/0"};

struct Snapshot {
  std::map<IdentityKey, uint32_t> ids;
  std::map<PrefixKey, uint32_t> cache;
};

Snapshot OfAllocate(const IdentityTable& t) {
  Snapshot s{t.ids, {}};
  for (const auto& e : t.cache) s.cache[PrefixKey::Of(e.prefix)] = e.identity;
  return s;
}

class IdentityIndexRandom : public ::testing::TestWithParam<uint32_t> {};

TEST_P(IdentityIndexRandom, EqualsAllocateAndChangesAreExact) {
  std::mt19937 rng(GetParam());
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  std::map<std::string, Workload> workloads;  // by name
  std::vector<IpPrefix> cidrs;
  IdentityIndex index;
  Snapshot before;
  std::map<std::string, uint32_t> own_before;  // workload name -> IdentityOf
  for (int step = 0; step < 300; ++step) {
    std::set<std::string> touched;
    int changes = 1 + static_cast<int>(pick(3));
    for (int i = 0; i < changes; ++i) {
      size_t what = pick(10);
      if (what < 6) {  // upsert a workload (a small universe: names, namespaces, SAs and addresses collide)
        std::string name = "w" + std::to_string(pick(8));
        std::vector<std::string> ips = {kIps[pick(kIps.size())]};
        if (pick(3) == 0) ips.push_back(kIps[pick(kIps.size())]);
        Workload w = MakeWorkload(pick(2) ? "ns-a" : "ns-b", name, "x", pick(3) ? "sa" + std::to_string(pick(2)) : "",
                                  ips);
        // One workload per name across namespaces in this universe.
        if (auto it = workloads.find(name); it != workloads.end()) index.Remove(it->second.ns, name);
        touched.insert(name);
        workloads[name] = w;
        index.Upsert(w);
      } else if (what < 8) {
        std::string name = "w" + std::to_string(pick(8));
        if (auto it = workloads.find(name); it != workloads.end()) {
          index.Remove(it->second.ns, name);
          workloads.erase(it);
        }
        touched.insert(name);
      } else {  // a new policy CIDR set
        cidrs.clear();
        for (const auto& c : kCidrs) {
          if (pick(3) == 0) cidrs.push_back(*ParseIpOrCidr(c));
        }
        index.SetCidrs(cidrs);
      }
    }
    IdentityIndex::Changes ch = index.Commit();

    std::vector<Workload> all;
    for (const auto& [n, w] : workloads) all.push_back(w);
    Policy carrier;  // SourceCidrs(policies) == cidrs
    carrier.rules.emplace_back().from.emplace_back().ip_blocks = cidrs;
    IdentityTable want = IdentityAllocator().Allocate(all, {carrier}, index.known());
    Snapshot got{index.table().ids, index.cache()};
    Snapshot expect = OfAllocate(want);
    std::string where = "seed " + std::to_string(GetParam()) + " step " + std::to_string(step);
    ASSERT_EQ(got.ids, expect.ids) << where;
    ASSERT_EQ(got.cache, expect.cache) << where;
    for (const auto& [id, info] : want.by_id) {
      const IdentityInfo* mine = index.table().Find(id);
      ASSERT_NE(mine, nullptr) << where;
      EXPECT_EQ(mine->spiffe_id, info.spiffe_id) << where;
      EXPECT_EQ(mine->cidrs, info.cidrs) << where;
    }
    EXPECT_EQ(index.table().by_id.size(), want.by_id.size()) << where;
    for (const auto& [k, id] : got.ids) EXPECT_GE(id, static_cast<uint32_t>(WEFT_IDENTITY_FIRST_DYNAMIC));

    // Exact change sets.
    std::set<PrefixKey> cache_diff;
    for (const auto& [pk, id] : before.cache) {
      auto it = got.cache.find(pk);
      if (it == got.cache.end() || it->second != id) cache_diff.insert(pk);
    }
    for (const auto& [pk, id] : got.cache) {
      if (!before.cache.contains(pk)) cache_diff.insert(pk);
    }
    std::set<uint32_t> id_diff;
    std::set<uint32_t> was, now;
    for (const auto& [k, id] : before.ids) was.insert(id);
    for (const auto& [k, id] : got.ids) now.insert(id);
    std::set_symmetric_difference(was.begin(), was.end(), now.begin(), now.end(), std::inserter(id_diff, id_diff.end()));
    EXPECT_EQ(ch.cache, cache_diff) << where;
    EXPECT_EQ(ch.identities, id_diff) << where;
    // Resolve agrees with the allocator's longest-prefix match.
    for (const auto& ip : kIps) EXPECT_EQ(index.Resolve(Ip(ip)), want.Resolve(Ip(ip))) << where << " " << ip;
    EXPECT_EQ(index.Resolve(Ip("8.8.8.8")), want.Resolve(Ip("8.8.8.8"))) << where;
    // A workload nobody touched whose own identity moved was reported as rekeyed.
    std::map<std::string, uint32_t> own_now;
    for (const auto& [n, w] : workloads) {
      own_now[n] = index.IdentityOf(w);
      EXPECT_NE(own_now[n], 0u) << where;
      if (!touched.contains(n) && own_before.contains(n) && own_before[n] != own_now[n]) {
        EXPECT_TRUE(ch.rekeyed.contains({w.ns, n})) << where << " " << n;
      }
    }
    own_before = std::move(own_now);
    before = got;
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, IdentityIndexRandom, ::testing::Values(1u, 7u, 42u, 1234u));

TEST(IdentityIndex, NumbersAreNeverReusedAndComeBack) {
  IdentityIndex index;
  Workload a = MakeWorkload("ns", "a", "x", "sa-a", {"10.0.0.1"});
  Workload b = MakeWorkload("ns", "b", "x", "sa-b", {"10.0.0.2"});
  index.Upsert(a);
  index.Upsert(b);
  index.Commit();
  uint32_t ida = index.Resolve(Ip("10.0.0.1")), idb = index.Resolve(Ip("10.0.0.2"));
  index.Remove("ns", "b");
  auto ch = index.Commit();
  EXPECT_EQ(ch.identities, std::set<uint32_t>{idb});
  EXPECT_EQ(index.Resolve(Ip("10.0.0.2")), static_cast<uint32_t>(WEFT_IDENTITY_UNKNOWN));
  Workload c = MakeWorkload("ns", "c", "x", "sa-c", {"10.0.0.3"});
  index.Upsert(c);
  ch = index.Commit();
  EXPECT_GT(index.Resolve(Ip("10.0.0.3")), idb);  // b's number is not handed to c
  EXPECT_EQ(ch.numbered.size(), 1u);
  index.Upsert(b);
  ch = index.Commit();
  EXPECT_EQ(index.Resolve(Ip("10.0.0.2")), idb);  // b's key comes back with its number
  EXPECT_TRUE(ch.numbered.empty());
  EXPECT_EQ(index.Resolve(Ip("10.0.0.1")), ida);

  // A restart: Seed with what was persisted gives the same numbers whatever the order.
  IdentityIndex restarted;
  restarted.Seed(index.known());
  restarted.Upsert(c);
  restarted.Upsert(b);
  restarted.Upsert(a);
  restarted.Commit();
  EXPECT_EQ(restarted.cache(), index.cache());
}

}  // namespace
}  // namespace weft::authz
