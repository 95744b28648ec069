// Bookinfo, unchanged from Istio's samples, through the compiler: which
// reviews pods a connect may reach under each routing file (EXPECTED.md).
#include <gtest/gtest.h>

#include "controller/compiler.hpp"
#include "tests/compiler/compiler_test_util.hpp"
#include "tests/compiler/test_resources.hpp"

namespace weft::controller::testing {
namespace {

const std::string kShared = WEFT_SHARED_DIR "/istio-samples";
const std::string kNet = kShared + "/bookinfo/networking/";
const std::string kOwn = WEFT_TESTDATA_DIR "/compiler/";

std::vector<config::Resource> Pods() { return BookinfoPods(); }

class Bookinfo : public ::testing::Test {
 protected:
  // Compiles bookinfo.yaml + the pods + the given files, in order.
  v1::NodeConfig Compile(const std::vector<std::string>& files, const std::string& node = "node-a") {
    std::vector<config::Resource> all = LoadYaml(kShared + "/bookinfo/platform/bookinfo.yaml");
    AssignClusterIps(all);
    for (auto& p : Pods()) all.push_back(std::move(p));
    for (const auto& f : files) {
      for (auto& r : LoadYaml(f)) {
        // A later file replaces an earlier object of the same key (kubectl apply).
        auto same = std::find_if(all.begin(), all.end(), [&](const auto& o) { return o.key == r.key; });
        if (same != all.end()) {
          *same = std::move(r);
        } else {
          all.push_back(std::move(r));
        }
      }
    }
    compiler_.Reset(all);
    return compiler_.Snapshot(node);
  }
  Compiler compiler_;
};

struct RoutingCase {
  const char* name;
  std::vector<std::string> files;
  std::map<std::string, uint32_t> reviews;  // workload -> weight
  bool needs_l7;
};

class BookinfoRouting : public Bookinfo, public ::testing::WithParamInterface<RoutingCase> {};

TEST_P(BookinfoRouting, ReviewsBackends) {
  const RoutingCase& c = GetParam();
  v1::NodeConfig cfg = Compile(c.files);
  const v1::ServicePort& p = FindPort(FindService(cfg, "default/reviews"), 9080);
  EXPECT_EQ(Weights(p), c.reviews);
  EXPECT_EQ(p.needs_l7(), c.needs_l7);
  EXPECT_EQ(p.app_protocol(), "http");
  EXPECT_EQ(p.algorithm(), v1::LB_RANDOM);
}

const std::map<std::string, uint32_t> kAllReviews = {
    {"default/reviews-v1", 1}, {"default/reviews-v2", 1}, {"default/reviews-v3", 1}};

INSTANTIATE_TEST_SUITE_P(
    Files, BookinfoRouting,
    ::testing::Values(
        RoutingCase{"NoRouting", {}, kAllReviews, false},
        RoutingCase{"SubsetsOnly", {kNet + "destination-rule-all.yaml"}, kAllReviews, false},
        RoutingCase{"AllV1",
                    {kNet + "destination-rule-all.yaml", kNet + "virtual-service-all-v1.yaml"},
                    {{"default/reviews-v1", 1}},
                    false},
        RoutingCase{"Reviews50V3",
                    {kNet + "destination-rule-all.yaml", kNet + "virtual-service-all-v1.yaml",
                     kOwn + "virtual-service-reviews-50-v3.yaml"},
                    {{"default/reviews-v1", 1}, {"default/reviews-v3", 1}},
                    false},
        RoutingCase{"Reviews80_20",
                    {kNet + "destination-rule-all.yaml", kNet + "virtual-service-all-v1.yaml",
                     kNet + "virtual-service-reviews-80-20.yaml"},
                    {{"default/reviews-v1", 4}, {"default/reviews-v2", 1}},
                    false},
        RoutingCase{"TestV2HeaderMatch",
                    {kNet + "destination-rule-all.yaml", kNet + "virtual-service-all-v1.yaml",
                     kOwn + "virtual-service-reviews-test-v2.yaml"},
                    kAllReviews,
                    true},
        RoutingCase{"JasonV2V3",
                    {kNet + "destination-rule-all.yaml", kNet + "virtual-service-all-v1.yaml",
                     kNet + "virtual-service-reviews-jason-v2-v3.yaml"},
                    kAllReviews,
                    true},
        // The VirtualService names subset v1 but no DestinationRule defines it:
        // Istio answers "no healthy upstream", the kernel refuses the connect.
        RoutingCase{"SubsetWithoutDestinationRule", {kNet + "virtual-service-all-v1.yaml"}, {}, false},
        // Gateway-bound routes do not apply to mesh traffic.
        RoutingCase{"GatewayOnly", {kNet + "bookinfo-gateway.yaml"}, kAllReviews, false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(Bookinfo, FaultInjectionNeedsL7OnlyForRatings) {
  v1::NodeConfig cfg = Compile({kNet + "destination-rule-all.yaml", kNet + "virtual-service-all-v1.yaml",
                                kNet + "virtual-service-ratings-test-abort.yaml"});
  EXPECT_TRUE(FindPort(FindService(cfg, "default/ratings"), 9080).needs_l7());
  EXPECT_FALSE(FindPort(FindService(cfg, "default/reviews"), 9080).needs_l7());
  EXPECT_FALSE(FindPort(FindService(cfg, "default/details"), 9080).needs_l7());
}

TEST_F(Bookinfo, MutualTlsDestinationRules) {
  v1::NodeConfig plain = Compile({kNet + "destination-rule-all.yaml"});
  v1::NodeConfig mtls = Compile({kNet + "destination-rule-all-mtls.yaml"});
  for (const char* svc : {"default/productpage", "default/reviews", "default/ratings", "default/details"}) {
    EXPECT_FALSE(FindPort(FindService(plain, svc), 9080).needs_mtls()) << svc;
    EXPECT_TRUE(FindPort(FindService(mtls, svc), 9080).needs_mtls()) << svc;
  }
}

TEST_F(Bookinfo, HttpAuthorizationNeedsL7) {
  // allow-nothing alone is decided on the connection: no L7.
  auto docs = LoadYaml(kShared + "/security/authz-http.yaml");
  ASSERT_EQ(docs.size(), 5u);
  std::vector<config::Resource> all = LoadYaml(kShared + "/bookinfo/platform/bookinfo.yaml");
  AssignClusterIps(all);
  for (auto& p : Pods()) all.push_back(std::move(p));
  all.push_back(docs[0]);
  compiler_.Reset(all);
  v1::NodeConfig nothing = compiler_.Snapshot("node-a");
  for (const auto& s : nothing.services()) EXPECT_FALSE(s.ports(0).needs_l7()) << s.name();
  // The viewers match on methods: every Bookinfo service needs the proxy.
  std::vector<config::Resource> more(docs.begin() + 1, docs.end());
  ChangeSet cs = compiler_.Update(more, {});
  EXPECT_EQ(cs.services, (std::set<std::string>{"default/details", "default/productpage", "default/ratings",
                                                "default/reviews"}));
  v1::NodeConfig viewers = compiler_.Snapshot("node-a");
  for (const auto& s : viewers.services()) EXPECT_TRUE(s.ports(0).needs_l7()) << s.name();
}

TEST_F(Bookinfo, DnsServiceEntryIsNotAnL4Service) {
  v1::NodeConfig cfg = Compile({kNet + "egress-rule-google-apis.yaml"});
  EXPECT_EQ(cfg.services_size(), 4);
}

TEST_F(Bookinfo, NodeWorkloadsAndIdentities) {
  v1::NodeConfig a = Compile({}, "node-a");
  std::vector<std::string> names;
  for (const auto& w : a.local_workloads()) names.push_back(w.name());
  EXPECT_EQ(names, (std::vector<std::string>{"details-v1", "productpage-v1", "reviews-v1"}));
  const v1::Workload& reviews = a.local_workloads(2);
  EXPECT_EQ(reviews.service_account(), "bookinfo-reviews");
  EXPECT_EQ(reviews.spiffe_id(), "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
  EXPECT_EQ(reviews.labels().at("version"), "v1");
  ASSERT_EQ(reviews.addresses_size(), 1);
  EXPECT_EQ(AddrText(reviews.addresses(0)), "10.1.0.4");
  v1::NodeConfig b = compiler_.Snapshot("node-b");
  EXPECT_EQ(b.local_workloads_size(), 3);
  EXPECT_EQ(b.services_size(), 4);  // every node gets every service
  EXPECT_EQ(compiler_.Snapshot("node-c").local_workloads_size(), 0);
}

}  // namespace
}  // namespace weft::controller::testing
