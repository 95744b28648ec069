// Replays tests/testdata/{bad,good}-config. Each bad file states the errors it
// must produce as "# expect: <fragment>" lines: the file must be rejected with
// exactly that many errors, each located as <file>:<line>:<col>.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "config/loader.hpp"
#include "config/resources.hpp"
#include "config/typed.hpp"
#include "testdata_util.hpp"

namespace weft::config {
namespace {

namespace fs = std::filesystem;
using testutil::Expectations;
using testutil::Lines;
using testutil::ReadFile;
using testutil::YamlFiles;

const std::string kBadDir = WEFT_TESTDATA_DIR "/bad-config";
const std::string kGoodDir = WEFT_TESTDATA_DIR "/good-config";

class BadConfigTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BadConfigTest, RejectedWithLocatedErrors) {
  std::string text = ReadFile(fs::path(kBadDir) / GetParam());
  std::vector<std::string> expected = Expectations(text);
  ASSERT_FALSE(expected.empty()) << GetParam() << " has no '# expect:' line";

  auto result = ParseResources(text, GetParam());
  ASSERT_FALSE(result.ok()) << GetParam() << " was accepted";
  const std::string msg = result.status().message();
  std::vector<std::string> errors = Lines(msg);
  const std::regex located("^" + std::regex_replace(GetParam(), std::regex(R"(\.)"), R"(\.)") + R"(:\d+:\d+: .+)");
  for (const auto& e : errors) EXPECT_TRUE(std::regex_match(e, located)) << "not located: " << e;
  for (const auto& fragment : expected) EXPECT_NE(msg.find(fragment), std::string::npos) << "missing: " << fragment << "\ngot:\n" << msg;
  EXPECT_EQ(errors.size(), expected.size()) << msg;
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadConfigTest, ::testing::ValuesIn(YamlFiles(kBadDir)),
                         [](const auto& info) {
                           std::string name = fs::path(info.param).stem().string();
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(BadConfigCorpus, HasAtLeastFifteenFiles) { EXPECT_GE(YamlFiles(kBadDir).size(), 15u); }

class GoodConfigTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoodConfigTest, Accepted) {
  auto result = LoadConfigFile((fs::path(kGoodDir) / GetParam()).string());
  EXPECT_TRUE(result.ok()) << result.status().message();
}

INSTANTIATE_TEST_SUITE_P(Corpus, GoodConfigTest, ::testing::ValuesIn(YamlFiles(kGoodDir)),
                         [](const auto& info) { return fs::path(info.param).stem().string(); });

TEST(SharedSamples, BookinfoPlatformParses) {
  const fs::path path = fs::path(WEFT_SHARED_DIR) / "istio-samples/bookinfo/platform/bookinfo.yaml";
  ASSERT_TRUE(fs::exists(path)) << "missing " << path
                                << ": the shared Istio samples are expected next to the repository (../shared)";
  auto result = LoadConfigFile(path.string());
  ASSERT_TRUE(result.ok()) << result.status().message();
  auto services = TypedAll<Service>(*result);
  ASSERT_EQ(services.size(), 4u);
  for (const auto& svc : services) {
    EXPECT_EQ(svc.ns, "default");
    EXPECT_TRUE(svc.vips.empty()) << svc.name << ": no clusterIP in the file, so no VIP";
    ASSERT_EQ(svc.ports.size(), 1u);
    EXPECT_EQ(svc.ports[0].port, 9080);
  }
  EXPECT_TRUE(TypedAll<WorkloadEntry>(*result).empty());
}

TEST(LoadConfigFile, ReadsAtMostTheRequestLimit) {
  // Before: /dev/zero was read until memory ran out.
  auto result = LoadConfigFile("/dev/zero");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "read config /dev/zero: larger than 32 MiB (the limit)");
}

TEST(LoadConfigFile, MissingFileNamesThePath) {
  auto result = LoadConfigFile("/nonexistent/weft.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "read config /nonexistent/weft.yaml: No such file or directory");
}

}  // namespace
}  // namespace weft::config
