// Replays tests/testdata/resources: every valid/<kind>.yaml parses; every
// invalid/<kind>-<what>.yaml is rejected with exactly its "# expect: <line>"
// messages, in file order. Then the shared Istio samples: all parse, and
// Analyze warns where istioctl analyze would.
#include <gtest/gtest.h>

#include <set>

#include "config/resources.hpp"
#include "testdata_util.hpp"

namespace weft::config {
namespace {

namespace fs = std::filesystem;
using namespace testutil;  // NOLINT

const std::string kValidDir = WEFT_TESTDATA_DIR "/resources/valid";
const std::string kInvalidDir = WEFT_TESTDATA_DIR "/resources/invalid";
const std::string kSamplesDir = WEFT_SHARED_DIR "/istio-samples";

auto ParamName = [](const auto& info) { return TestName(info.param); };

class ValidResourceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ValidResourceTest, Accepted) {
  auto result = ParseResources(ReadFile(fs::path(kValidDir) / GetParam()), GetParam());
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_FALSE(result->empty());
}

INSTANTIATE_TEST_SUITE_P(Corpus, ValidResourceTest, ::testing::ValuesIn(YamlFiles(kValidDir)), ParamName);

class InvalidResourceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(InvalidResourceTest, RejectedWithExactlyTheExpectedErrors) {
  std::string text = ReadFile(fs::path(kInvalidDir) / GetParam());
  std::vector<std::string> expected = Expectations(text);
  ASSERT_FALSE(expected.empty()) << GetParam() << " has no '# expect:' line";
  auto result = ParseResources(text, GetParam());
  ASSERT_FALSE(result.ok()) << GetParam() << " was accepted";
  EXPECT_EQ(Lines(result.status().message()), expected);
}

INSTANTIATE_TEST_SUITE_P(Corpus, InvalidResourceTest, ::testing::ValuesIn(YamlFiles(kInvalidDir)), ParamName);

// Every kind has a valid fixture and at least one invalid one.
TEST(ResourceCorpus, CoversEveryKind) {
  const std::vector<std::string> kinds = {"service", "serviceaccount", "namespace", "deployment",
                                          "virtualservice", "destinationrule", "serviceentry", "workloadentry",
                                          "gateway", "authorizationpolicy", "peerauthentication",
                                          "requestauthentication"};
  auto valid = YamlFiles(kValidDir);
  auto invalid = YamlFiles(kInvalidDir);
  for (const auto& kind : kinds) {
    EXPECT_NE(std::find(valid.begin(), valid.end(), kind + ".yaml"), valid.end()) << "no valid/" << kind << ".yaml";
    EXPECT_TRUE(std::any_of(invalid.begin(), invalid.end(), [&](const std::string& f) { return f.rfind(kind + "-", 0) == 0; }))
        << "no invalid/" << kind << "-*.yaml";
  }
}

class SharedSampleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedSampleTest, Parses) {
  const fs::path path = fs::path(kSamplesDir) / GetParam();
  auto result = ParseResources(ReadFile(path), path.string());
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_FALSE(result->empty());
}

INSTANTIATE_TEST_SUITE_P(IstioSamples, SharedSampleTest, ::testing::ValuesIn(YamlFiles(kSamplesDir, true)), ParamName);

TEST(SharedSamples, ArePresent) {
  EXPECT_GE(YamlFiles(kSamplesDir, true).size(), 13u)
      << kSamplesDir << ": the shared Istio samples are expected next to the repository (../shared)";
}

// Parses sample files (relative to istio-samples/) into one set, as one apply would.
std::vector<Resource> Samples(std::initializer_list<std::string> files) {
  std::vector<Resource> all;
  for (const auto& f : files) {
    const fs::path path = fs::path(kSamplesDir) / f;
    auto r = ParseResources(ReadFile(path), path.string());
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (r.ok()) all.insert(all.end(), r->begin(), r->end());
  }
  return all;
}

std::multiset<std::string> Fields(const std::vector<Diagnostic>& diags) {
  std::multiset<std::string> out;
  for (const auto& d : diags) {
    EXPECT_EQ(d.severity, Severity::kWarning) << d.ToString();
    EXPECT_EQ(d.code, "ReferencedResourceNotFound") << d.ToString();
    out.insert(d.resource + " " + d.field);
  }
  return out;
}

const std::string kPlatform = "bookinfo/platform/bookinfo.yaml";
const std::string kAllV1 = "bookinfo/networking/virtual-service-all-v1.yaml";
const std::string kDrAll = "bookinfo/networking/destination-rule-all.yaml";

TEST(AnalyzeSamples, AllV1WithoutDestinationRulesWarnsOnEverySubset) {
  auto diags = Analyze(Samples({kPlatform, kAllV1}));
  const std::string f = "spec.http[0].route[0].destination.subset";
  EXPECT_EQ(Fields(diags), (std::multiset<std::string>{"VirtualService default/details " + f,
                                                       "VirtualService default/productpage " + f,
                                                       "VirtualService default/ratings " + f,
                                                       "VirtualService default/reviews " + f}));
  ASSERT_FALSE(diags.empty());
  EXPECT_NE(diags[0].ToString().find("virtual-service-all-v1.yaml:"), std::string::npos) << diags[0].ToString();
  EXPECT_NE(diags[0].message.find("+v1\""), std::string::npos) << diags[0].message;
}

TEST(AnalyzeSamples, AllV1WithDestinationRulesIsClean) {
  for (const auto& dr : {kDrAll, std::string("bookinfo/networking/destination-rule-all-mtls.yaml")}) {
    auto diags = Analyze(Samples({kPlatform, dr, kAllV1}));
    EXPECT_TRUE(diags.empty()) << dr << ": " << diags.front().ToString();
  }
}

TEST(AnalyzeSamples, RoutingTasksAreCleanOnTopOfTheirDestinationRules) {
  for (const auto& vs : {"virtual-service-reviews-80-20.yaml", "virtual-service-reviews-jason-v2-v3.yaml",
                         "virtual-service-ratings-test-abort.yaml", "bookinfo-gateway.yaml"}) {
    auto diags = Analyze(Samples({kPlatform, kDrAll, std::string("bookinfo/networking/") + vs}));
    EXPECT_TRUE(diags.empty()) << vs << ": " << diags.front().ToString();
  }
}

TEST(AnalyzeSamples, WithoutThePlatformHostsAreUnknown) {
  auto diags = Analyze(Samples({kDrAll, kAllV1}));
  const std::string f = "spec.http[0].route[0].destination.host";
  EXPECT_EQ(Fields(diags), (std::multiset<std::string>{"VirtualService default/details " + f,
                                                       "VirtualService default/productpage " + f,
                                                       "VirtualService default/ratings " + f,
                                                       "VirtualService default/reviews " + f}));
}

TEST(AnalyzeSamples, GatewayVirtualServiceWithoutItsGatewayWarns) {
  auto all = Samples({kPlatform, "bookinfo/networking/bookinfo-gateway.yaml"});
  std::erase_if(all, [](const Resource& r) { return r.key.kind == "Gateway"; });
  EXPECT_EQ(Fields(Analyze(all)), (std::multiset<std::string>{"VirtualService default/bookinfo spec.gateways[0]"}));
}

TEST(AnalyzeSamples, SecuritySamplesGiveNoWarnings) {
  // Selectors that match no workload are not a finding (istioctl does not warn either).
  auto diags = Analyze(Samples({"security/authz-http.yaml", "security/authz-deny-step2.yaml",
                                "security/authz-deny-step3.yaml"}));
  EXPECT_TRUE(diags.empty());
}

}  // namespace
}  // namespace weft::config
