// The bounds of config/limits.hpp and the text checks, at and past each
// limit: inputs too big to keep as corpus files are generated here (the small
// ones are in tests/testdata/resources/invalid: alias bomb, alias cycle, deep
// nesting, invalid UTF-8, NUL). Each row is accepted, or refused with exactly
// one error line that starts with its file:line:col.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "config/limits.hpp"
#include "config/resources.hpp"
#include "testdata_util.hpp"

namespace weft::config {
namespace {

std::string Service(const std::string& metadata_extra, const std::string& spec_extra = "") {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: cart\n" + metadata_extra + "spec:\n  ports: [{port: 80}]\n" +
         spec_extra;
}

std::string Annotated(size_t value_bytes) {
  return Service("  annotations:\n    a: \"" + std::string(value_bytes, 'x') + "\"\n");
}

// A Deployment with `affinity` (a field Weft accepts without modelling) set to `affinity`.
std::string Deployment(const std::string& affinity, const std::string& template_meta = "") {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n"
         "  template:\n    metadata:\n      labels: {app: web}\n" +
         template_meta + "    spec:\n      containers: [{name: c}]\n      affinity: " + affinity + "\n";
}

// Anchors a0..a<levels-1>, each a list of nine aliases of the one before.
std::string AliasLevels(int levels) {
  std::string s = "\n        a0: &a0 [x, x, x, x, x, x, x, x, x]";
  for (int i = 1; i < levels; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    s += "\n        a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) s += (k ? ", " : "") + prev;
    s += "]";
  }
  return s;  // a block mapping under `affinity:`
}

std::string ServiceWithPorts(size_t n) {
  std::string s = "apiVersion: v1\nkind: Service\nmetadata: {name: many}\nspec:\n  ports:\n";
  for (size_t i = 0; i < n; ++i) {
    s += "  - {name: p" + std::to_string(i) + ", port: " + std::to_string(1 + i) + "}\n";
  }
  return s;
}

std::string Documents(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns" + std::to_string(i) + "}\n";
  return s;
}

struct Row {
  std::string name;
  std::function<std::string()> text;
  std::string error;  // "" accepted; else the whole message must start with this
  size_t max_documents = kMaxDocuments;
};

const std::vector<Row>& Rows() {
  static const std::vector<Row> rows = {
      // Annotations: 256 KiB, keys and values together ("a" is one byte).
      {"AnnotationsAtTheLimit", [] { return Annotated(kMaxAnnotationBytes - 1); }, ""},
      {"AnnotationsOverTheLimit", [] { return Annotated(kMaxAnnotationBytes); },
       "t.yaml:6:5: Service default/cart: metadata.annotations: annotations total 262145 bytes, more than 256 KiB"},
      {"PodTemplateAnnotationsOverTheLimit",
       [] { return Deployment("{}", "      annotations: {a: \"" + std::string(kMaxAnnotationBytes, 'x') + "\"}\n"); },
       "t.yaml:9:20: Deployment default/web: spec.template.metadata.annotations: annotations total 262145 bytes"},
      // One object: 1.5 MiB as stored, with its aliases expanded.
      {"ObjectUnderTheLimit", [] { return Deployment("{x: \"" + std::string(kMaxObjectBytes - 512, 'x') + "\"}"); }, ""},
      {"ObjectOverTheLimit", [] { return Deployment("{x: \"" + std::string(kMaxObjectBytes, 'x') + "\"}"); },
       "t.yaml:1:1: document 1: larger than 1.5 MiB with its aliases expanded (the limit per object)"},
      {"ObjectOverTheLimitThroughAliases",
       [] {
         return Deployment("{a: &big \"" + std::string(200 * 1024, 'x') + "\", b: [*big, *big, *big, *big, *big, *big, *big]}");
       },
       "t.yaml:1:1: document 1: larger than 1.5 MiB"},
      // Aliases: ordinary use is fine; expansion is counted, never done.
      {"AliasesWithinTheBudget", [] { return Deployment(AliasLevels(4)); }, ""},
      {"AliasBombRefusedBeforeExpanding", [] { return Deployment(AliasLevels(12)); },
       "t.yaml:16:18: document 1: alias *a3 expands to 7381 nodes, 15670 added by aliases so far: at most 10000"},
      {"NestingAtTheLimit", [] { return Deployment(std::string(kMaxDepth - 4, '[') + std::string(kMaxDepth - 4, ']')); },
       ""},
      {"NestingOverTheLimit", [] { return Deployment(std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']')); },
       "t.yaml:11:113: document 1: nested more than 100 levels deep (the limit)"},
      // The same with an anchor: counted by the event scan instead of the loader, same message.
      {"NestingOverTheLimitWithAnAnchor",
       [] { return Deployment("&deep " + std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']')); },
       "t.yaml:11:119: document 1: nested more than 100 levels deep (the limit)"},
      // Documents per request: the caller's share.
      {"DocumentsAtTheLimit", [] { return Documents(3); }, "", 3},
      {"DocumentsOverTheLimit", [] { return Documents(4); },
       "t.yaml:13:1: document 4: more than 3 documents in one request (the limit)", 3},
      // Bytes per request.
      {"RequestOverTheLimit", [] { return Service("") + "#" + std::string(kMaxRequestBytes, ' ') + "\n"; },
       "t.yaml:1:1: input: 33554514 bytes is larger than 32 MiB (the limit per request)"},
      // Ports per Service: what the agent's service ids can hold, dual-stack.
      {"ServicePortsAtTheLimit", [] { return ServiceWithPorts(kMaxServicePorts); }, ""},
      {"ServicePortsOverTheLimit", [] { return ServiceWithPorts(kMaxServicePorts + 1); },
       "t.yaml:6:3: Service default/many: spec.ports: 32768 ports, more than 32767 (the limit: each port of each "
       "cluster IP takes one of the agent's 65535 service ids)"},
      // Text: UTF-8 and YAML's printable set, located to the byte.
      {"Utf8MultibyteReachesTheParser", [] { return Service("  labels: {team: \"caf\xc3\xa9\"}\n  annotations: {a: \"\xe2\x82\xac \xf0\x9f\x90\x9f\"}\n"); },
       "t.yaml:5:18: Service default/cart: metadata.labels.team: invalid label value \"caf\xc3\xa9\""},
      {"Utf8Truncated", [] { return Service("  annotations: {a: \"\xe2\x82\"}\n"); },
       "t.yaml:5:21: input: invalid UTF-8 (byte 0xe2): YAML text must be UTF-8"},
      {"Utf8Surrogate", [] { return Service("  annotations: {a: \"\xed\xa0\x80\"}\n"); },
       "t.yaml:5:21: input: invalid UTF-8 (byte 0xed)"},
      {"Utf8AboveUnicode", [] { return Service("  annotations: {a: \"\xf4\x90\x80\x80\"}\n"); },
       "t.yaml:5:21: input: invalid UTF-8 (byte 0xf4)"},
      {"Latin1", [] { return "# caf\xe9\n" + Service(""); }, "t.yaml:1:6: input: invalid UTF-8 (byte 0xe9)"},
      {"Escape", [] { return Service("  annotations: {a: \"\x1b[31m\"}\n"); },
       "t.yaml:5:21: input: control character U+001B (ESC) is not allowed in YAML text"},
      {"Delete", [] { return Service("  annotations: {a: \"\x7f\"}\n"); }, "t.yaml:5:21: input: control character U+007F (DEL)"},
      {"C1Control", [] { return Service("  annotations: {a: \"\xc2\x80\"}\n"); }, "t.yaml:5:21: input: control character U+0080"},
      {"TabsCrLfBomAndNelAccepted",
       [] { return "\xef\xbb\xbf" "apiVersion: v1\r\nkind: Service\r\nmetadata: {name: cart, annotations: {a: \"\t\xc2\x85\"}}\r\n"
                   "spec: {ports: [{port: 80}]}\r\n"; },
       ""},
      // Escapes produce any character: accepted in values, escaped in messages.
      {"EscapedNulInAValueAccepted", [] { return Service("  annotations: {a: \"x\\0y\"}\n"); }, ""},
      {"EscapedNulInAMessageIsEscaped", [] { return Service("  labels: {\"a\\0b\": x}\n"); },
       "t.yaml:5:12: Service default/cart: metadata.labels.a\\x00b: invalid label key: "},
      // yaml-cpp 0.7's LoadAll loops forever, growing, on a ',' that starts a
      // document (found by the config_yaml fuzzer; its input is in the corpus).
      {"StrayCommaAtTheStart", [] { return std::string(" ,\n"); },
       "t.yaml:1:2: document 1: ',' outside a flow collection: it separates entries only inside [...] or {...}"},
      {"StrayCommaAfterAScalar", [] { return std::string("\"x\" ,\n"); }, "t.yaml:1:5: document 2: ',' outside"},
      {"StrayCommaAfterATag", [] { return std::string("!t ,\n"); }, "t.yaml:1:4: document"},
      {"StrayCommaAfterAnAnchor", [] { return std::string("&a ,\n"); }, "t.yaml:1:4: document"},
      {"StrayCommaAfterADocument", [] { return Service("") + "---\n ,a\n"; }, "t.yaml:"},
      {"CommasInsideValuesAccepted", [] { return Service("  annotations:\n    a: \"x, y\"\n    b: p,q\n    c: d, e\n  labels: {t: v}\n"); }, ""},
      {"EscapedNewlineInAMessageIsEscaped", [] { return Service("  labels: {\"a\\nb\": x}\n"); },
       "t.yaml:5:12: Service default/cart: metadata.labels.a\\x0ab: invalid label key: "},
  };
  return rows;
}

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

class InputLimitsTest : public ::testing::TestWithParam<Row> {};

TEST_P(InputLimitsTest, AcceptedOrRefusedWithItsPosition) {
  const Row& row = GetParam();
  ParseOptions options;
  options.max_documents = row.max_documents;
  auto result = ParseResources(row.text(), "t.yaml", options);
  if (row.error.empty()) {
    EXPECT_TRUE(result.ok()) << result.status().message().substr(0, 2000);
    return;
  }
  ASSERT_FALSE(result.ok()) << "accepted";
  const std::string msg = result.status().message();
  EXPECT_EQ(msg.rfind(row.error, 0), 0u) << msg.substr(0, 2000);
  EXPECT_EQ(testutil::Lines(msg).size(), 1u) << msg.substr(0, 2000);
  EXPECT_EQ(msg.find('\0'), std::string::npos);
  EXPECT_EQ(CheckText(row.text(), "t.yaml").ok(), msg.find(": input: ") == std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Table, InputLimitsTest, ::testing::ValuesIn(Rows()),
                         [](const auto& info) { return info.param.name; });

TEST(DisplayName, EscapesWhatIsNotPrintableUtf8) {
  EXPECT_EQ(DisplayName("conf/caf\xc3\xa9.yaml"), "conf/caf\xc3\xa9.yaml");
  EXPECT_EQ(DisplayName(std::string("a\0b\xff\n", 5)), "a\\x00b\\xff\\x0a");
}

TEST(FormatBytes, NamesTheUnit) {
  EXPECT_EQ(FormatBytes(kMaxObjectBytes), "1.5 MiB");
  EXPECT_EQ(FormatBytes(kMaxAnnotationBytes), "256 KiB");
  EXPECT_EQ(FormatBytes(kMaxRequestBytes), "32 MiB");
  EXPECT_EQ(FormatBytes(1000), "1000 bytes");
}

}  // namespace
}  // namespace weft::config
