// weft.v1.NodeConfig -> lb::DesiredState, and deltas on NodeConfigState
// (label `unit`: no kernel, no gRPC server).
#include "agent/proto_convert.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <random>

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

NodeConfigState State(std::vector<v1::Service> svcs) {
  v1::NodeConfig c;
  for (auto& s : svcs) *c.add_services() = s;
  auto st = NodeConfigState::FromSnapshot(c);
  EXPECT_TRUE(st.ok()) << st.status().message();
  return *st;
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
  EXPECT_FALSE(NodeConfigState::FromSnapshot(twice).ok());
}

TEST(ProtoConvert, DeltaUpsertsAndRemovesByName) {
  NodeConfigState st = State({Svc("a", "10.96.0.1", 80, {}), Svc("b", "10.96.0.2", 80, {})});
  v1::NodeConfigDelta d;
  *d.add_upserted_services() = Svc("a", "10.96.0.9", 80, {});
  *d.add_upserted_services() = Svc("c", "10.96.0.3", 80, {});
  d.add_removed_services("ns/b");
  d.add_removed_services("ns/unknown");  // ignored
  ASSERT_TRUE(st.ApplyDelta(d).ok());
  ASSERT_EQ(st.services.size(), 2u);
  EXPECT_EQ(st.services.count("ns/b"), 0u);
  EXPECT_EQ(st.services.at("ns/a").ports(0).vip(), Bytes("10.96.0.9"));
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
TEST(ConvertedConfig, IncrementalDeltasAgreeWithTheFullConversion) {
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
  auto snap = ConvertedConfig::PrepareSnapshot(first);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  ConvertedConfig cc;
  cc.Commit(std::move(*snap));
  int accepted = 0, rejected = 0;
  for (int step = 0; step < 500; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    v1::NodeConfigDelta d;
    for (uint32_t n = 1 + pick(3); n > 0; --n) {
      int i = static_cast<int>(pick(10));
      if (pick(4) == 0) d.add_removed_services("ns/s" + std::to_string(i));
      else *d.add_upserted_services() = random_service(i);
    }
    NodeConfigState full_state = cc.state();
    ASSERT_TRUE(full_state.ApplyDelta(d).ok());
    auto full = ToDesiredState(full_state);
    auto inc = cc.PrepareDelta(d);
    ASSERT_EQ(full.ok(), inc.ok()) << (full.ok() ? inc.status().message() : full.status().message());
    if (!inc.ok()) {
      ++rejected;
      EXPECT_NE(inc.status().message().find("is claimed by both"), std::string::npos) << inc.status().message();
      continue;
    }
    ++accepted;
    ExpectSameDesired(inc->desired, *full);
    cc.Commit(std::move(*inc));
    ExpectSameDesired(cc.desired(), *full);
    EXPECT_EQ(cc.state().services.size(), full_state.services.size());
    if (HasFailure()) return;
  }
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 10);
}

TEST(ConvertedConfig, SnapshotReplacesEverythingAndErrorsNameBoth) {
  v1::NodeConfig c;
  *c.add_services() = Svc("a", "10.96.0.1", 80, {{"10.1.0.1", 1}});
  auto p = ConvertedConfig::PrepareSnapshot(c);
  ASSERT_TRUE(p.ok());
  ConvertedConfig cc;
  cc.Commit(std::move(*p));
  v1::NodeConfigDelta d;
  *d.add_upserted_services() = Svc("b", "10.96.0.1", 80, {});
  auto bad = cc.PrepareDelta(d);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "10.96.0.1:80/TCP is claimed by both ns/a port p and ns/b port p");
  EXPECT_EQ(cc.desired().services.size(), 1u);
  // Moving a to another VIP in the same delta frees the key.
  *d.add_upserted_services() = Svc("a", "10.96.0.2", 80, {});
  auto ok = cc.PrepareDelta(d);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  cc.Commit(std::move(*ok));
  EXPECT_EQ(cc.desired().services.size(), 2u);
  // A snapshot replaces everything.
  v1::NodeConfig c2;
  *c2.add_services() = Svc("z", "10.96.0.9", 80, {});
  auto p2 = ConvertedConfig::PrepareSnapshot(c2);
  ASSERT_TRUE(p2.ok());
  cc.Commit(std::move(*p2));
  ASSERT_EQ(cc.desired().services.size(), 1u);
  EXPECT_EQ(cc.desired().services.begin()->second.name, "ns/z:p");
  EXPECT_EQ(cc.state().services.count("ns/a"), 0u);
}

}  // namespace
}  // namespace weft::agent
