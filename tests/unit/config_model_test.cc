// What the file config source makes of valid input: defaults and every field.
#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace weft::config {
namespace {

const Service* FindService(const Config& c, const std::string& name) {
  for (const auto& s : c.services) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Workload* FindWorkload(const Config& c, const std::string& name) {
  for (const auto& w : c.workloads) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

TEST(ConfigModel, Defaults) {
  auto c = LoadConfigFile(WEFT_TESTDATA_DIR "/good-config/minimal.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const Service* echo = FindService(*c, "echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->ns, "default");
  EXPECT_EQ(echo->vips, std::vector<IpAddr>{Ip("10.96.1.1")});
  ASSERT_EQ(echo->ports.size(), 1u);
  EXPECT_EQ(echo->ports[0].target.number, 7) << "targetPort defaults to port";
  EXPECT_EQ(echo->ports[0].protocol, Protocol::kTcp);
  EXPECT_EQ(echo->algorithm, LbAlgorithm::kRandom);
  EXPECT_EQ(echo->maglev_table_size, 0u);
  EXPECT_FALSE(echo->steer_to_proxy);
  const Workload* w = FindWorkload(*c, "echo-1");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->ns, "default");
  EXPECT_EQ(w->weight, 1u);
  EXPECT_EQ(w->addresses, std::vector<IpAddr>{Ip("10.1.0.1")});
}

TEST(ConfigModel, AllFields) {
  auto c = LoadConfigFile(WEFT_TESTDATA_DIR "/good-config/shop.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->services.size(), 4u);
  EXPECT_EQ(c->workloads.size(), 6u);

  const Service* cart = FindService(*c, "cart");
  ASSERT_NE(cart, nullptr);
  EXPECT_EQ(cart->ns, "shop");
  EXPECT_EQ(cart->vips, (std::vector<IpAddr>{Ip("10.96.0.10"), Ip("fd00:10:96::10")}));
  EXPECT_EQ(cart->selector, (Labels{{"app", "cart"}}));
  ASSERT_EQ(cart->ports.size(), 2u);
  EXPECT_EQ(cart->ports[0].name, "http");
  EXPECT_EQ(cart->ports[0].target.name, "http-alt");
  EXPECT_EQ(cart->ports[0].app_protocol, "http");
  EXPECT_EQ(cart->ports[1].target.number, 9090);

  const Service* checkout = FindService(*c, "checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->algorithm, LbAlgorithm::kMaglev) << "sessionAffinity: ClientIP";
  EXPECT_EQ(checkout->maglev_table_size, 251u);
  EXPECT_TRUE(checkout->steer_to_proxy);
  EXPECT_EQ(checkout->ports[0].target.number, 8443);

  const Service* dns = FindService(*c, "dns");
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->ports[0].protocol, Protocol::kUdp);
  EXPECT_EQ(dns->ports[1].protocol, Protocol::kTcp);

  const Service* headless = FindService(*c, "headless");
  ASSERT_NE(headless, nullptr);
  EXPECT_TRUE(headless->vips.empty());

  const Workload* cart1 = FindWorkload(*c, "cart-1");
  ASSERT_NE(cart1, nullptr);
  EXPECT_EQ(cart1->labels, (Labels{{"app", "cart"}, {"version", "v1"}}));
  EXPECT_EQ(cart1->ports, (std::map<std::string, uint16_t>{{"http-alt", 8080}}));
  EXPECT_EQ(cart1->service_account, "cart");
  EXPECT_EQ(cart1->network, "net1");
  EXPECT_EQ(cart1->locality, "eu/west/a");
  EXPECT_EQ(FindWorkload(*c, "cart-2")->weight, 3u);
  EXPECT_EQ(FindWorkload(*c, "cart-drained")->weight, 0u);
  EXPECT_EQ(FindWorkload(*c, "cart-v6")->addresses, std::vector<IpAddr>{Ip("fd00::1")});
}

TEST(ConfigModel, AnnotationSelectsAlgorithm) {
  struct Row {
    const char* annotations;
    LbAlgorithm want;
  };
  const Row rows[] = {
      {"{}", LbAlgorithm::kRandom},
      {"{weft.io/lb-algorithm: maglev}", LbAlgorithm::kMaglev},
      {"{weft.io/lb-algorithm: random}", LbAlgorithm::kRandom},
      {"{other.io/anything: x}", LbAlgorithm::kRandom},
  };
  for (const auto& row : rows) {
    std::string text = std::string("apiVersion: v1\nkind: Service\nmetadata: {name: s, annotations: ") +
                       row.annotations + "}\nspec: {ports: [{port: 1}]}\n";
    auto c = ParseConfig(text, "inline.yaml");
    ASSERT_TRUE(c.ok()) << row.annotations << ": " << c.status().message();
    EXPECT_EQ(c->services[0].algorithm, row.want) << row.annotations;
  }
}

TEST(ConfigModel, EmptyDocumentsAreSkipped) {
  auto c = ParseConfig("---\n---\n# only a comment\n", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->services.empty());
}

}  // namespace
}  // namespace weft::config
