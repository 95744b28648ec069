// weft.v1.NodeConfig -> the node state (agent/node_state.hpp): services ->
// lb::DesiredState, deltas converted incrementally, VIP sanity; and the
// applied versions (label `unit`: no kernel, no gRPC server).
#include "agent/proto_convert.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "agent/applied_state.hpp"
#include "agent/node_state.hpp"
#include "tests/support/node_config_delta.hpp"

namespace weft::agent {
namespace {

std::string Bytes(const std::string& text) {
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) return std::string(reinterpret_cast<const char*>(&a4), 4);
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &a6), 1) << text;
  return std::string(reinterpret_cast<const char*>(&a6), 16);
}

v1::Service Svc(const std::string& name, const std::string& vip, uint32_t port,
                std::vector<std::pair<std::string, uint32_t>> backends) {
  v1::Service s;
  s.set_namespace_("ns");
  s.set_name(name);
  auto* p = s.add_ports();
  p->set_vip(Bytes(vip));
  p->set_port(port);
  p->set_protocol(v1::TCP);
  p->set_name("p");
  for (const auto& [addr, weight] : backends) {
    auto* b = p->add_backends();
    b->set_address(Bytes(addr));
    b->set_port(8080);
    b->set_weight(weight);
  }
  return s;
}

v1::NodeConfig State(std::vector<v1::Service> svcs) {
  v1::NodeConfig c;
  for (auto& s : svcs) *c.add_services() = s;
  return c;
}

TEST(ProtoConvert, ServicePortsBecomeEntries) {
  v1::Service s = Svc("web", "10.96.0.1", 80, {{"10.1.0.2", 1}, {"10.1.0.1", 3}, {"10.1.0.3", 0}});
  auto* udp = s.add_ports();
  *udp = s.ports(0);
  udp->set_protocol(v1::UDP);
  udp->set_algorithm(v1::LB_MAGLEV);
  udp->set_maglev_table_size(251);
  udp->set_needs_l7(true);
  udp->set_name("dns");
  auto d = ToDesiredState(State({s}));
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_EQ(d->services.size(), 2u);

  auto tcp = d->services.find(lb::MakeServiceKey(*IpAddr::Parse("10.96.0.1"), 80, IPPROTO_TCP));
  ASSERT_NE(tcp, d->services.end());
  EXPECT_EQ(tcp->second.name, "ns/web:p");
  EXPECT_EQ(tcp->second.algo, WEFT_LB_RANDOM);
  ASSERT_EQ(tcp->second.backends.size(), 2u);  // weight 0 skipped, sorted by address
  EXPECT_EQ(tcp->second.backends[0].StableName(), "10.1.0.1:8080");
  EXPECT_EQ(tcp->second.backends[0].weight, 3u);

  auto u = d->services.find(lb::MakeServiceKey(*IpAddr::Parse("10.96.0.1"), 80, IPPROTO_UDP));
  ASSERT_NE(u, d->services.end());
  EXPECT_EQ(u->second.algo, WEFT_LB_MAGLEV);
  EXPECT_EQ(u->second.maglev_table_size, 251);
  EXPECT_EQ(u->second.flags, 0);  // needs_l7: no STEER_PROXY until the proxy exists
}

TEST(ProtoConvert, Ipv6AndDuplicates) {
  auto d = ToDesiredState(State({Svc("v6", "fd00::10", 443, {{"fd00::1", 1}, {"fd00::1", 2}})}));
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_EQ(d->services.size(), 1u);
  ASSERT_EQ(d->services.begin()->second.backends.size(), 1u);
  EXPECT_EQ(d->services.begin()->second.backends[0].weight, 3u);  // listed twice: weights add
}

TEST(ProtoConvert, ErrorsNameTheServiceAndPort) {
  v1::Service bad = Svc("web", "10.96.0.1", 80, {});
  bad.mutable_ports(0)->set_vip("abc");
  auto d = ToDesiredState(State({bad}));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "service ns/web port p: vip has 3 bytes, expected 4 or 16");

  d = ToDesiredState(State({Svc("mixed", "10.96.0.1", 80, {{"fd00::1", 1}})}));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("is not of the VIP's family"), std::string::npos) << d.status().message();

  d = ToDesiredState(State({Svc("a", "10.96.0.1", 80, {}), Svc("b", "10.96.0.1", 80, {})}));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "10.96.0.1:80/TCP is claimed by both ns/a port p and ns/b port p");

  v1::NodeConfig twice;
  *twice.add_services() = Svc("a", "10.96.0.1", 80, {});
  *twice.add_services() = Svc("a", "10.96.0.2", 80, {});
  EXPECT_FALSE(ToDesiredState(twice).ok());
}

TEST(ProtoConvert, DeltaUpsertsAndRemovesByName) {
  ServiceState st;
  ASSERT_TRUE(st.ApplySnapshot(State({Svc("a", "10.96.0.1", 80, {}), Svc("b", "10.96.0.2", 80, {})})).ok());
  st.Commit();
  v1::NodeConfigDelta d;
  *d.add_upserted_services() = Svc("a", "10.96.0.9", 80, {});
  *d.add_upserted_services() = Svc("c", "10.96.0.3", 80, {});
  d.add_removed_services("ns/b");
  d.add_removed_services("ns/unknown");  // ignored
  auto changed = st.ApplyDelta(d);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_EQ(changed->size(), 2u) << "the keys of a and c";
  const auto& svcs = st.desired().services;
  ASSERT_EQ(svcs.size(), 2u);
  EXPECT_EQ(svcs.count(lb::MakeServiceKey(*IpAddr::Parse("10.96.0.2"), 80, IPPROTO_TCP)), 0u);
  EXPECT_EQ(svcs.count(lb::MakeServiceKey(*IpAddr::Parse("10.96.0.9"), 80, IPPROTO_TCP)), 1u);
  EXPECT_EQ(svcs.count(lb::MakeServiceKey(*IpAddr::Parse("10.96.0.1"), 80, IPPROTO_TCP)), 0u);
  // Revert: the last Commit's state.
  st.Revert();
  ASSERT_EQ(st.desired().services.size(), 2u);
  EXPECT_EQ(st.desired().services.count(lb::MakeServiceKey(*IpAddr::Parse("10.96.0.2"), 80, IPPROTO_TCP)), 1u);
}

// The desired states are the same: keys, names, algorithms, flags, backends.
void ExpectSameDesired(const lb::DesiredState& a, const lb::DesiredState& b) {
  ASSERT_EQ(a.services.size(), b.services.size());
  for (auto ia = a.services.begin(), ib = b.services.begin(); ia != a.services.end(); ++ia, ++ib) {
    ASSERT_EQ(std::memcmp(&ia->first, &ib->first, sizeof(weft_svc_key)), 0) << ia->second.name;
    EXPECT_EQ(ia->second.name, ib->second.name);
    EXPECT_EQ(ia->second.algo, ib->second.algo);
    EXPECT_EQ(ia->second.flags, ib->second.flags);
    EXPECT_EQ(ia->second.maglev_table_size, ib->second.maglev_table_size);
    EXPECT_EQ(ia->second.backends, ib->second.backends) << ia->second.name;
  }
}

// Random deltas (upserts that move VIPs, change backends, add ports;
// removals; some that claim a VIP:port twice): the incremental conversion
// accepts exactly what the full one accepts, gives the same desired state,
// and a rejected delta leaves the committed state as it was.
TEST(NodeState, IncrementalDeltasAgreeWithTheFullConversion) {
  std::mt19937 rng(7);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  auto random_service = [&](int i) {
    v1::Service s = Svc("s" + std::to_string(i), "10.96.0." + std::to_string(1 + pick(30)), 80 + pick(2),
                        {{"10.1.0." + std::to_string(1 + pick(5)), pick(3)}, {"10.1.0.9", 1}});
    if (pick(3) == 0) {
      auto* p = s.add_ports();
      *p = s.ports(0);
      p->set_port(p->port() + 100);
      p->set_name("q");
      p->set_algorithm(v1::LB_MAGLEV);
    }
    return s;
  };
  v1::NodeConfig first;
  for (int i = 0; i < 3; ++i)
    *first.add_services() = Svc("s" + std::to_string(i), "10.96.1." + std::to_string(i), 80, {});
  NodeState ns;
  auto snap = ns.ApplySnapshot(first, 1);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  ns.Commit();
  v1::NodeConfig whole = first;  // the reference: the same deltas on the whole config
  int accepted = 0, rejected = 0;
  for (int step = 0; step < 500; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    v1::NodeConfigDelta d;
    for (uint32_t n = 1 + pick(3); n > 0; --n) {
      int i = static_cast<int>(pick(10));
      if (pick(4) == 0) d.add_removed_services("ns/s" + std::to_string(i));
      else *d.add_upserted_services() = random_service(i);
    }
    v1::NodeConfig next = whole;
    weft::testing::ApplyDeltaToConfig(&next, d);
    auto full = ToDesiredState(next);
    const lb::DesiredState before = ns.services();
    auto inc = ns.ApplyDelta(d, 2 + step);
    ASSERT_EQ(full.ok(), inc.ok()) << (full.ok() ? inc.status().message() : full.status().message());
    if (!inc.ok()) {
      ++rejected;
      EXPECT_NE(inc.status().message().find("is claimed by both"), std::string::npos) << inc.status().message();
      ExpectSameDesired(ns.services(), before);  // nothing changed
      continue;
    }
    ++accepted;
    ExpectSameDesired(ns.services(), *full);
    if (step % 7 == 0) {  // a NACK: back to the state before it
      ns.Revert();
      ExpectSameDesired(ns.services(), before);
      continue;
    }
    ns.Commit();
    whole = std::move(next);
    if (HasFailure()) return;
  }
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 10);
}

TEST(NodeState, SnapshotReplacesEverythingAndErrorsNameBoth) {
  v1::NodeConfig c;
  *c.add_services() = Svc("a", "10.96.0.1", 80, {{"10.1.0.1", 1}});
  NodeState ns;
  ASSERT_TRUE(ns.ApplySnapshot(c, 1).ok());
  ns.Commit();
  v1::NodeConfigDelta d;
  *d.add_upserted_services() = Svc("b", "10.96.0.1", 80, {});
  auto bad = ns.ApplyDelta(d, 2);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "10.96.0.1:80/TCP is claimed by both ns/a port p and ns/b port p");
  EXPECT_EQ(ns.services().services.size(), 1u);
  EXPECT_EQ(ns.version(), 1u);
  // Moving a to another VIP in the same delta frees the key.
  *d.add_upserted_services() = Svc("a", "10.96.0.2", 80, {});
  auto ok = ns.ApplyDelta(d, 2);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ns.Commit();
  EXPECT_EQ(ns.services().services.size(), 2u);
  // A snapshot replaces everything; Revert takes it back whole.
  v1::NodeConfig c2;
  *c2.add_services() = Svc("z", "10.96.0.9", 80, {});
  ASSERT_TRUE(ns.ApplySnapshot(c2, 3).ok());
  ASSERT_EQ(ns.services().services.size(), 1u);
  EXPECT_EQ(ns.services().services.begin()->second.name, "ns/z:p");
  EXPECT_EQ(ns.version(), 3u);
  ns.Revert();
  EXPECT_EQ(ns.services().services.size(), 2u);
  EXPECT_EQ(ns.version(), 2u);
  ASSERT_TRUE(ns.ApplySnapshot(c2, 3).ok());
  ns.Commit();
  ASSERT_EQ(ns.services().services.size(), 1u);
  // Its services are the only ones: a delta removing a is a no-op, one adding a conflicts with nothing.
  v1::NodeConfigDelta again;
  again.add_removed_services("ns/a");
  *again.add_upserted_services() = Svc("b", "10.96.0.1", 80, {});
  ASSERT_TRUE(ns.ApplyDelta(again, 4).ok());
  EXPECT_EQ(ns.services().services.size(), 2u);
}

// One conversion for both parts: a push whose policy part is invalid is
// refused whole (the services too), and a NACKed push reverts both parts.
TEST(NodeState, OnePushOneStateBothParts) {
  v1::NodeConfig c;
  *c.add_services() = Svc("a", "10.96.0.1", 80, {});
  v1::Workload* w = c.add_local_workloads();
  w->set_namespace_("ns");
  w->set_name("pod");
  w->add_addresses(Bytes("10.1.0.5"));
  w->set_identity(300);
  NodeState ns;
  ASSERT_TRUE(ns.ApplySnapshot(c, 1).ok());
  ns.Commit();
  EXPECT_TRUE(ns.has_good());

  v1::NodeConfigDelta d;
  *d.add_upserted_services() = Svc("b", "10.96.0.2", 80, {});
  v1::Workload* bad = d.add_upserted_workloads();
  *bad = *w;
  bad->set_name("pod2");
  bad->add_policy()->set_verdict(v1::VERDICT_NONE);  // refused by the policy part
  auto r = ns.ApplyDelta(d, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("policy config delta: workload ns/pod2 policy entry 0"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(ns.services().services.size(), 1u) << "the services of a refused push are not taken either";
  EXPECT_EQ(ns.policy().endpoints.size(), 1u);

  bad->clear_policy();
  auto ok = ns.ApplyDelta(d, 2);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_TRUE(ok->policy.full);
  EXPECT_EQ(ns.services().services.size(), 2u);
  EXPECT_EQ(ns.policy().endpoints.size(), 2u);
  ns.Revert();  // NACKed by a consumer: both parts go back
  EXPECT_EQ(ns.services().services.size(), 1u);
  EXPECT_EQ(ns.policy().endpoints.size(), 1u);
  EXPECT_EQ(ns.version(), 1u);
}

// ---- VIP sanity (issue 9 item 3) ----

v1::Workload LocalWorkload(const std::string& name, const std::string& addr) {
  v1::Workload w;
  w.set_namespace_("ns");
  w.set_name(name);
  w.add_addresses(Bytes(addr));
  return w;
}

v1::IdentityCacheEntry Host(const std::string& addr, uint32_t id) {
  v1::IdentityCacheEntry e;
  e.set_prefix(Bytes(addr));
  e.set_prefix_len(Bytes(addr).size() == 4 ? 32 : 128);
  e.set_identity(id);
  return e;
}

v1::IdentityInfo Identity(uint32_t id, const std::string& spiffe) {
  v1::IdentityInfo i;
  i.set_id(id);
  i.set_spiffe_id(spiffe);
  return i;
}

// A push whose VIP is outside the node's VIP ranges or is a workload's
// address is refused before anything is decided; the committed state stays.
TEST(VipSanity, SnapshotsWithForeignVipsAreRefused) {
  struct Row {
    const char* name;
    std::function<void(v1::NodeConfig&)> make;
    const char* error;  // "" = accepted
  };
  const std::vector<Row> rows = {
      {"VIP in the service CIDR", [](v1::NodeConfig&) {}, ""},
      {"VIP in the ServiceEntry CIDR",
       [](v1::NodeConfig& c) { *c.add_services() = Svc("se", "240.240.0.7", 443, {{"192.0.2.10", 1}}); }, ""},
      {"IPv6 VIP in the v6 service CIDR",
       [](v1::NodeConfig& c) { *c.add_services() = Svc("six", "fd00:96::5", 80, {}); }, ""},
      {"VIP outside every range",
       [](v1::NodeConfig& c) { *c.add_services() = Svc("evil", "192.168.7.1", 80, {{"10.1.0.66", 1}}); },
       "service ns/evil port p: VIP 192.168.7.1 is outside this node's VIP ranges (10.96.0.0/16, fd00:96::/112, "
       "240.240.0.0/16, 2001:2::/48; weft-agent --service-cidr, --service-entry-cidr and their -v6): refusing the "
       "push, nothing changed"},
      {"a pod's address as VIP",
       [](v1::NodeConfig& c) { *c.add_services() = Svc("evil", "10.244.1.5", 80, {{"10.1.0.66", 1}}); },
       "VIP 10.244.1.5 is outside this node's VIP ranges"},
      {"VIP equal to a local workload",
       [](v1::NodeConfig& c) {
         *c.add_services() = Svc("evil", "10.96.5.5", 80, {});
         *c.add_local_workloads() = LocalWorkload("pod", "10.96.5.5");
       },
       "service ns/evil port p: VIP 10.96.5.5 is the address of local workload ns/pod: refusing the push"},
      {"VIP equal to a mesh workload (identity cache)",
       [](v1::NodeConfig& c) {
         *c.add_services() = Svc("evil", "10.96.5.6", 80, {});
         *c.add_identity_cache() = Host("10.96.5.6", 300);
         *c.add_identities() = Identity(300, "spiffe://cluster.local/ns/ns/sa/db");
       },
       "VIP 10.96.5.6 is the address of a workload of the mesh (identity 300 in the identity cache)"},
      {"VIP equal to a CIDR-only identity's /32 (a policy's ipBlock)",
       [](v1::NodeConfig& c) {
         *c.add_services() = Svc("ok", "10.96.5.7", 80, {});
         *c.add_identity_cache() = Host("10.96.5.7", 400);
         *c.add_identities() = Identity(400, "");
       },
       ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    v1::NodeConfig c;
    *c.add_services() = Svc("web", "10.96.0.1", 80, {{"10.1.0.1", 1}});
    row.make(c);
    NodeState ns;
    auto p = ns.ApplySnapshot(c, 1);
    if (std::string(row.error).empty()) {
      EXPECT_TRUE(p.ok()) << p.status().message();
    } else {
      ASSERT_FALSE(p.ok());
      EXPECT_NE(p.status().message().find(row.error), std::string::npos) << p.status().message();
    }
  }
}

// Deltas: a new VIP is checked, and so is a new workload address against
// the VIPs already there; a refused delta leaves the state as it was.
TEST(VipSanity, DeltasAreCheckedBothWays) {
  NodeState cc;
  v1::NodeConfig c;
  *c.add_services() = Svc("web", "10.96.0.1", 80, {{"10.1.0.1", 1}});
  *c.add_identity_cache() = Host("10.1.0.1", 300);
  *c.add_identities() = Identity(300, "spiffe://cluster.local/ns/ns/sa/web");
  auto p = cc.ApplySnapshot(c, 1);
  ASSERT_TRUE(p.ok()) << p.status().message();
  cc.Commit();

  v1::NodeConfigDelta outside;
  *outside.add_upserted_services() = Svc("evil", "1.2.3.4", 80, {});
  auto r = cc.ApplyDelta(outside, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("VIP 1.2.3.4 is outside"), std::string::npos) << r.status().message();

  v1::NodeConfigDelta onto_pod;  // the VIP of a new service is a known workload's address
  *onto_pod.add_upserted_services() = Svc("evil", "10.1.0.1", 80, {});
  NodeState wide(VipRanges{{*IpPrefix::Parse("10.0.0.0/8")}});  // the ranges allow it: only the workload check
  auto wp = wide.ApplySnapshot(c, 1);
  ASSERT_TRUE(wp.ok()) << wp.status().message();
  wide.Commit();
  r = wide.ApplyDelta(onto_pod, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("VIP 10.1.0.1 is the address of a workload of the mesh"), std::string::npos)
      << r.status().message();

  v1::NodeConfigDelta new_pod;  // a new workload address equal to an existing VIP
  *new_pod.add_upserted_identity_cache() = Host("10.96.0.1", 301);
  *new_pod.add_upserted_identities() = Identity(301, "spiffe://cluster.local/ns/ns/sa/db");
  r = cc.ApplyDelta(new_pod, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("service ns/web port p: VIP 10.96.0.1 is the address of a workload"),
            std::string::npos)
      << r.status().message();
  v1::NodeConfigDelta new_local;
  *new_local.add_upserted_workloads() = LocalWorkload("pod", "10.96.0.1");
  r = cc.ApplyDelta(new_local, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is the address of local workload ns/pod"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(cc.services().services.size(), 1u);
  EXPECT_TRUE(cc.policy().endpoints.empty());

  // Removing the workload's cache entry in the same delta makes the VIP fine again.
  v1::NodeConfigDelta move;
  *move.add_removed_identity_cache() = Host("10.1.0.1", 0);
  *move.add_upserted_services() = Svc("web2", "10.96.0.2", 80, {});
  r = cc.ApplyDelta(move, 2);
  EXPECT_TRUE(r.ok()) << r.status().message();
}

// ---- versions never go back (issue 9 item 3) ----

TEST(AppliedVersion, MonotonicWithinAStoreAndResetByAnother) {
  const std::optional<AppliedVersion> none;
  const std::optional<AppliedVersion> at10 = AppliedVersion{"aaaa", 10};
  struct Row {
    std::optional<AppliedVersion> applied;
    std::string store;
    uint64_t version;
    bool ok;
  } rows[] = {
      {none, "aaaa", 0, true},    {none, "aaaa", 999, true},  {at10, "aaaa", 10, true},
      {at10, "aaaa", 11, true},   {at10, "aaaa", 9, false},   {at10, "aaaa", 0, false},
      {at10, "bbbb", 1, true},    {at10, "", 1, true},        {AppliedVersion{"", 5}, "", 4, false},
  };
  for (const auto& r : rows) {
    std::string why = CheckMonotonic(r.applied, r.store, r.version, "/x/applied.json");
    EXPECT_EQ(why.empty(), r.ok) << r.store << " v" << r.version << ": " << why;
    if (!r.ok) {
      EXPECT_NE(why.find("is older than version"), std::string::npos) << why;
      EXPECT_NE(why.find("remove /x/applied.json"), std::string::npos) << why;
    }
  }
}

TEST(AppliedVersion, FileIsPrivateAtomicAndChecked) {
  char tmpl[] = "/tmp/weft-applied-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, path = AppliedPath(dir + "/state", "n1");
  auto none = LoadApplied(path);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_FALSE(*none);
  ::umask(0);  // the helper must not depend on the umask
  ASSERT_TRUE(SaveApplied(path, {"abcd", 42}).ok());
  ::umask(022);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((dir + "/state/n1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  auto back = LoadApplied(path);
  ASSERT_TRUE(back.ok() && *back);
  EXPECT_EQ(**back, (AppliedVersion{"abcd", 42}));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::ofstream(path, std::ios::trunc) << "{\"store_id\": 7}";
  auto bad = LoadApplied(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ": no \"store_id\" string"), std::string::npos)
      << bad.status().message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace weft::agent
