// NodeConfig (+ deltas) -> PolicyDesired -> KernelPolicy: the pure part of the
// agent's TC policy datapath (agent/policy/desired.hpp). Label `unit`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <functional>
#include <string>

#include "agent/policy/desired.hpp"

namespace weft::policy {
namespace {

std::string V4(const char* ip) {
  in_addr a{};
  inet_pton(AF_INET, ip, &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

v1::Workload W(const std::string& name, const char* ip, uint32_t id) {
  v1::Workload w;
  w.set_namespace_("ns");
  w.set_name(name);
  w.add_addresses(V4(ip));
  w.set_identity(id);
  return w;
}

v1::PolicyEntry E(uint32_t peer, uint32_t port, v1::Protocol proto, v1::Verdict v, uint32_t pid) {
  v1::PolicyEntry e;
  e.set_peer_identity(peer);
  e.set_port(port);
  e.set_protocol(proto);
  e.set_verdict(v);
  e.set_policy_id(pid);
  return e;
}

TEST(PolicyDesired, BuildsEntriesAndIdentityCache) {
  v1::NodeConfig c;
  auto* w = c.add_local_workloads();
  *w = W("a", "10.1.0.5", 300);
  w->set_enforce_ingress(true);
  *w->add_policy() = E(301, 80, v1::TCP, v1::ALLOW, 7);
  *w->add_policy() = E(0, 0, v1::UDP, v1::DENY, 8);
  w->add_policies("ns/p");
  auto* ic = c.add_identity_cache();
  ic->set_prefix(V4("10.2.3.4"));  // host bits set: cleared
  ic->set_prefix_len(16);
  ic->set_identity(301);
  auto d = PolicyState::Convert(c);
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_EQ(d->endpoints.size(), 1u);
  const auto& e = d->endpoints.at("ns/a");
  EXPECT_TRUE(e.enforce_ingress);
  EXPECT_EQ(e.entries.size(), 2u);
  ASSERT_EQ(d->identity.size(), 1u);
  const auto& [k, v] = *d->identity.begin();
  EXPECT_EQ(k.prefixlen, 96u + 16);
  EXPECT_EQ(k.addr[12], 10);
  EXPECT_EQ(k.addr[13], 2);
  EXPECT_EQ(k.addr[14], 0);
  EXPECT_EQ(k.addr[15], 0);
  EXPECT_EQ(v.identity, 301u);

  KernelPolicy kp = ToKernel(*d, {{"ns/a", Placement{42, 3}}});
  ASSERT_EQ(kp.endpoints.size(), 1u);
  EXPECT_EQ(kp.endpoints.at(42).ep_id, 3u);
  EXPECT_EQ(kp.endpoints.at(42).identity, 300u);
  EXPECT_EQ(kp.endpoints.at(42).enforce_ingress, 1);
  ASSERT_EQ(kp.policy.size(), 2u);
  for (const auto& [pk, pv] : kp.policy) {
    EXPECT_EQ(pk.ep_id, 3u);
    EXPECT_EQ(pk.direction, WEFT_DIR_INGRESS);
    if (pk.proto == IPPROTO_TCP) {
      EXPECT_EQ(pk.peer_identity, 301u);
      EXPECT_EQ(pk.port, 80);
      EXPECT_EQ(pv.verdict, WEFT_VERDICT_ALLOW);
      EXPECT_EQ(pv.policy_id, 7u);
    } else {
      EXPECT_EQ(pv.verdict, WEFT_VERDICT_DENY);
    }
  }
  // Unplaced workloads are not in the maps.
  EXPECT_TRUE(ToKernel(*d, {}).endpoints.empty());
  EXPECT_TRUE(ToKernel(*d, {}).policy.empty());
}

// The endpoint entry carries its placement's addresses (the pod's allowed
// sources), IPv4-mapped, at most WEFT_EP_MAX_ADDRS; and two workloads are one
// endpoint only if their identity, enforcement and entries are all the same.
TEST(PolicyDesired, EndpointAddressesAndSameEndpoint) {
  v1::NodeConfig c;
  *c.add_local_workloads() = W("a", "10.1.0.5", 300);
  *c.add_local_workloads() = W("a-v6", "10.1.0.6", 300);
  *c.add_local_workloads() = W("b", "10.1.0.7", 301);
  auto d = PolicyState::Convert(c);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(SameEndpoint(d->endpoints.at("ns/a"), d->endpoints.at("ns/a-v6")));
  EXPECT_FALSE(SameEndpoint(d->endpoints.at("ns/a"), d->endpoints.at("ns/b"))) << "another identity";
  EndpointDesired enforcing = d->endpoints.at("ns/a-v6");
  enforcing.enforce_egress = true;
  EXPECT_FALSE(SameEndpoint(d->endpoints.at("ns/a"), enforcing)) << "another enforcement";

  Placement p{42, 3, {*IpAddr::Parse("10.1.0.5"), *IpAddr::Parse("fd00::5")}};
  KernelPolicy kp = ToKernel(*d, {{"ns/a", p}});
  const weft_endpoint& ep = kp.endpoints.at(42);
  ASSERT_EQ(ep.n_addrs, 2);
  EXPECT_EQ(IpAddr::FromBytes(ep.addrs[0]).ToString(), "10.1.0.5");
  EXPECT_EQ(ep.addrs[0][10], 0xff) << "IPv4-mapped";
  EXPECT_EQ(IpAddr::FromBytes(ep.addrs[1]).ToString(), "fd00::5");
  for (int i = 0; i < 6; ++i) p.addresses.push_back(*IpAddr::Parse("10.9.0." + std::to_string(i)));
  EXPECT_EQ(ToKernel(*d, {{"ns/a", p}}).endpoints.at(42).n_addrs, WEFT_EP_MAX_ADDRS);
  // No placement addresses: an entry that checks nothing (ABI 1's meaning);
  // the agent never writes one (every placed workload has an address).
  EXPECT_EQ(ToKernel(*d, {{"ns/a", Placement{42, 3, {}}}}).endpoints.at(42).n_addrs, 0);
}

TEST(PolicyDesired, RejectsBadInput) {
  struct Row {
    const char* name;
    std::function<void(v1::NodeConfig*)> mutate;
    const char* want;  // substring of the error
  } rows[] = {
      {"bad address", [](v1::NodeConfig* c) { c->mutable_local_workloads(0)->set_addresses(0, "abc"); },
       "address 0"},
      {"verdict none", [](v1::NodeConfig* c) {
         *c->mutable_local_workloads(0)->add_policy() = E(1, 1, v1::TCP, v1::VERDICT_NONE, 1);
       }, "verdict"},
      {"protocol unspecified", [](v1::NodeConfig* c) {
         *c->mutable_local_workloads(0)->add_policy() = E(1, 1, v1::PROTOCOL_UNSPECIFIED, v1::ALLOW, 1);
       }, "protocol"},
      {"port too big", [](v1::NodeConfig* c) {
         *c->mutable_local_workloads(0)->add_policy() = E(1, 70000, v1::TCP, v1::ALLOW, 1);
       }, "port 70000"},
      {"conflicting duplicate entry", [](v1::NodeConfig* c) {
         *c->mutable_local_workloads(0)->add_policy() = E(1, 80, v1::TCP, v1::ALLOW, 1);
         *c->mutable_local_workloads(0)->add_policy() = E(1, 80, v1::TCP, v1::DENY, 2);
       }, "earlier entry"},
      {"prefix too long", [](v1::NodeConfig* c) {
         auto* ic = c->add_identity_cache();
         ic->set_prefix(V4("10.0.0.0"));
         ic->set_prefix_len(33);
         ic->set_identity(300);
       }, "prefix length 33"},
      {"identity ANY in the cache", [](v1::NodeConfig* c) {
         auto* ic = c->add_identity_cache();
         ic->set_prefix(V4("10.0.0.0"));
         ic->set_prefix_len(8);
         ic->set_identity(0);
       }, "identity 0"},
      {"workload twice", [](v1::NodeConfig* c) { *c->add_local_workloads() = W("a", "10.0.0.9", 301); },
       "listed twice"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    v1::NodeConfig c;
    *c.add_local_workloads() = W("a", "10.0.0.1", 300);
    r.mutate(&c);
    Status st = PolicyState::Convert(c).status();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find(r.want), std::string::npos) << st.message();
  }
}

TEST(PolicyDesired, DeltaUpsertsAndRemoves) {
  v1::NodeConfig c;
  *c.add_local_workloads() = W("a", "10.0.0.1", 300);
  *c.add_local_workloads() = W("b", "10.0.0.2", 301);
  auto* ic = c.add_identity_cache();
  ic->set_prefix(V4("10.0.0.1"));
  ic->set_prefix_len(32);
  ic->set_identity(300);
  auto* pn = c.add_policy_names();
  pn->set_id(5);
  pn->set_name("ns/x");
  PolicyState st;
  ASSERT_TRUE(st.ApplySnapshot(c).ok());
  st.Commit();

  v1::NodeConfigDelta d;
  d.add_removed_workloads("ns/b");
  d.add_removed_workloads("ns/never-there");  // ignored
  *d.add_upserted_workloads() = W("c", "10.0.0.3", 302);
  auto* rm = d.add_removed_identity_cache();
  rm->set_prefix(V4("10.0.0.1"));
  rm->set_prefix_len(32);
  auto* up = d.add_upserted_identity_cache();
  up->set_prefix(V4("10.0.0.3"));
  up->set_prefix_len(32);
  up->set_identity(302);
  d.add_removed_policy_names(5);
  auto change = st.ApplyDelta(d);
  ASSERT_TRUE(change.ok()) << change.status().message();
  EXPECT_TRUE(change->full) << "workloads changed";
  const PolicyDesired* des = &st.desired();
  EXPECT_EQ(des->endpoints.count("ns/a"), 1u);
  EXPECT_EQ(des->endpoints.count("ns/b"), 0u);
  EXPECT_EQ(des->endpoints.count("ns/c"), 1u);
  ASSERT_EQ(des->identity.size(), 1u);
  EXPECT_EQ(des->identity.begin()->second.identity, 302u);
  EXPECT_TRUE(des->policy_names.empty());

  // Revert: the state of the last Commit, exactly.
  st.Revert();
  auto before = PolicyState::Convert(c);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(st.desired().endpoints.size(), 2u);
  EXPECT_EQ(st.desired().endpoints.count("ns/b"), 1u);
  ASSERT_EQ(st.desired().identity.size(), 1u);
  EXPECT_EQ(st.desired().identity.begin()->second.identity, 300u);
  EXPECT_EQ(st.desired().policy_names.size(), 1u);

  // A delta that fails to convert changes nothing.
  v1::NodeConfigDelta bad;
  *bad.add_upserted_workloads() = W("d", "10.0.0.4", 303);
  bad.add_removed_workloads("ns/a");
  auto* b = bad.add_upserted_identity_cache();
  b->set_prefix("abc");
  b->set_prefix_len(8);
  b->set_identity(303);
  auto r = st.ApplyDelta(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("3 bytes"), std::string::npos) << r.status().message();
  EXPECT_EQ(st.desired().endpoints.size(), 2u);
  EXPECT_EQ(st.desired().endpoints.count("ns/a"), 1u);
}

// Only identity-cache entries: the change names their kernel keys (the fast
// path); prefixes that differ only in host bits share a key, and the entry
// left is what a whole conversion gives.
TEST(PolicyDesired, IdentityCacheDeltaNamesItsKeys) {
  auto entry = [](const char* ip, uint32_t len, uint32_t id) {
    v1::IdentityCacheEntry e;
    e.set_prefix(V4(ip));
    e.set_prefix_len(len);
    e.set_identity(id);
    return e;
  };
  v1::NodeConfig c;
  *c.add_identity_cache() = entry("10.2.0.0", 16, 301);
  *c.add_identity_cache() = entry("10.2.9.9", 16, 302);  // the same trie key (host bits differ)
  PolicyState st;
  ASSERT_TRUE(st.ApplySnapshot(c).ok());
  st.Commit();
  auto whole = PolicyState::Convert(c);
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(st.desired().identity.size(), 1u);
  EXPECT_EQ(st.desired().identity.begin()->second.identity, whole->identity.begin()->second.identity);

  v1::NodeConfigDelta d;
  *d.add_removed_identity_cache() = entry("10.2.9.9", 16, 0);
  auto change = st.ApplyDelta(d);
  ASSERT_TRUE(change.ok()) << change.status().message();
  EXPECT_FALSE(change->full);
  ASSERT_EQ(change->identity_keys.size(), 1u);
  ASSERT_EQ(st.desired().identity.size(), 1u) << "10.2.0.0/16 still maps to that key";
  EXPECT_EQ(st.desired().identity.begin()->second.identity, 301u);
}

}  // namespace
}  // namespace weft::policy
