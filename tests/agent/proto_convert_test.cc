// weft.v1.NodeConfig -> lb::DesiredState, and deltas on NodeConfigState
// (label `unit`: no kernel, no gRPC server).
#include "agent/proto_convert.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

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

}  // namespace
}  // namespace weft::agent
