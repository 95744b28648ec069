// Fuzz target: YAML text -> validated Resources (config::ParseResources), the
// path every byte of `weftctl apply` and of the agent's file mode takes.
//
// Beyond "no crash, no sanitizer report, bounded time and memory" (libFuzzer's
// -timeout and -rss_limit_mb), it checks what users rely on:
//   - an error is one "file:line:col: ..." line per problem, never cut by a
//     NUL, never empty;
//   - an accepted document is canonical: its object written back as YAML
//     (what `weftctl get -o yaml` prints) parses to the same object, so
//     get | apply is a no-op;
//   - Analyze, the typed view (config::TypedView) and the compiler (what the
//     controller and the agent's file mode run next) accept whatever
//     ParseResources accepted without crashing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/resources.hpp"
#include "config/typed.hpp"
#include "controller/compiler.hpp"

namespace {

constexpr std::string_view kFile = "fuzz.yaml";

[[noreturn]] void Fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "config_yaml_fuzz: %s\n--- input (%zu bytes) ---\n%.*s\n", what.c_str(), input.size(),
               static_cast<int>(input.size() > 4096 ? 4096 : input.size()), input.data());
  std::abort();
}

void CheckError(const std::string& message, std::string_view input) {
  if (message.empty()) Fail("rejected with an empty message", input);
  if (message.find('\0') != std::string::npos) Fail("error message contains a NUL: " + message, input);
  size_t start = 0;
  while (start < message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string_view line(message.data() + start, end - start);
    if (line.substr(0, kFile.size() + 1) != std::string(kFile) + ":")
      Fail("error line does not start with the file name: \"" + std::string(line) + "\"", input);
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = weft::config::ParseResources(text, kFile);
  if (!parsed.ok()) {
    CheckError(parsed.status().message(), text);
    return 0;
  }
  for (const auto& r : *parsed) {
    std::string yaml = weft::config::ToYaml(r.object);
    auto again = weft::config::ParseResources(yaml, kFile);
    if (!again.ok())
      Fail("the canonical YAML of " + r.key.ToString() + " is rejected: " + again.status().message() + "\n" + yaml,
           text);
    if (again->size() != 1 || (*again)[0].object != r.object)
      Fail("the canonical YAML of " + r.key.ToString() + " reads back as another object:\n" + yaml, text);
  }
  (void)weft::config::Analyze(*parsed);
  for (const auto& r : *parsed) (void)weft::config::TypedView(r);
  weft::controller::Compiler compiler;
  compiler.Reset(*parsed);
  (void)compiler.Snapshot("");
  return 0;
}
