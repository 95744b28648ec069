// Fuzz target: what weftctl and the tests read from a node (the node-local
// contract, weft/node/): names.json (node::ParseNames, the reader the agent's
// writer is paired with) and the agent's admin answer (node::ParseAgentInfo).
//
// Input: any bytes, given to both readers. Checks, beyond "no crash, no
// sanitizer report": a refusal has a message naming the input; an accepted
// input written back by the paired writer (RenderNames / RenderAgentInfo)
// reads back to the same text (the writer and the reader are one schema).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "weft/node/admin.hpp"
#include "weft/node/names_file.hpp"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "node_files: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace weft::node;

  auto names = ParseNames(text, "names.json");
  if (!names.ok()) {
    if (names.status().message().rfind("names.json", 0) != 0) Fail("names refusal does not name the input", names.status().message());
  } else {
    const std::string once = RenderNames(*names);
    auto again = ParseNames(once, "rendered");
    if (!again.ok()) Fail("the writer's names.json is refused by the reader", again.status().message() + "\n" + once);
    if (RenderNames(*again) != once) Fail("names.json does not read back to itself", once);
  }

  auto info = ParseAgentInfo(text, "agent");
  if (!info.ok()) {
    if (info.status().message().rfind("agent", 0) != 0) Fail("admin refusal does not name the input", info.status().message());
  } else {
    const std::string once = RenderAgentInfo(*info);
    auto again = ParseAgentInfo(once, "rendered");
    if (!again.ok()) Fail("the agent's answer is refused by the reader", again.status().message() + "\n" + once);
    if (RenderAgentInfo(*again) != once) Fail("the admin answer does not read back to itself", once);
  }
  return 0;
}
