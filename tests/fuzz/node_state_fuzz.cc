// Fuzz target: the controller's pushes -> the agent's node state, what the
// agent does with every ControllerMessage before anything reaches a map.
//
// Input: protobuf text format of weft.v1.ControllerMessage, several separated
// by a line "---" (a stream: a snapshot replaces the state, a delta applies
// onto it). Text format keeps the committed seeds readable and lets the fuzzer
// reach the conversion logic instead of protobuf's own parser.
//
// Checks, per message, beyond "no crash, no sanitizer report":
//   - LB: the incremental conversion (ConvertedConfig::PrepareDelta, what the
//     agent runs) accepts exactly what the full conversion (ToDesiredState of
//     the whole state) accepts, but for the VIP sanity checks only the agent's
//     conversion makes (a VIP outside the node's ranges or on a workload's
//     address), and gives the same desired state; a refused push leaves the
//     committed state as it was;
//   - policy: PolicyConfig takes the same push (on a copy, as the agent does);
//     whatever BuildPolicyDesired accepts, ToKernel turns into maps whose
//     policy entries all belong to a placed endpoint.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include "agent/policy/desired.hpp"
#include "agent/proto_convert.hpp"

namespace {

// The fuzzer's inputs are mostly not valid text format: stay quiet about it.
class SilentErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
};

using weft::agent::ConvertedConfig;
using weft::agent::NodeConfigState;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "node_state_fuzz: %s\n", what.c_str());
  std::abort();
}

// The refusals only ConvertedConfig makes (proto_convert.hpp: VIP sanity).
bool VipSanityRefusal(const weft::Status& st) {
  const std::string& m = st.message();
  return m.find("is outside this node's VIP ranges") != std::string::npos ||
         m.find(" is the address of ") != std::string::npos;
}

bool SameDesired(const weft::lb::DesiredState& a, const weft::lb::DesiredState& b) {
  if (a.services.size() != b.services.size()) return false;
  for (auto ia = a.services.begin(), ib = b.services.begin(); ia != a.services.end(); ++ia, ++ib) {
    if (std::memcmp(&ia->first, &ib->first, sizeof ia->first) != 0) return false;
    const auto &x = ia->second, &y = ib->second;
    if (x.name != y.name || x.algo != y.algo || x.flags != y.flags || x.maglev_table_size != y.maglev_table_size ||
        x.backends != y.backends)
      return false;
  }
  return true;
}

std::vector<std::string_view> SplitMessages(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t sep = text.find("\n---\n", start);
    size_t end = sep == std::string_view::npos ? text.size() : sep;
    out.push_back(text.substr(start, end - start));
    if (sep == std::string_view::npos) break;
    start = sep + 5;
  }
  return out;
}

// LB side: incremental vs full conversion.
void CheckLb(ConvertedConfig& cc, bool& have_state, const weft::v1::ControllerMessage& msg) {
  if (msg.has_snapshot()) {
    auto full_state = NodeConfigState::FromSnapshot(msg.snapshot());
    auto pending = cc.PrepareSnapshot(msg.snapshot());
    bool full_ok = full_state.ok();
    weft::Result<weft::lb::DesiredState> full = weft::Status::Error("state refused");
    if (full_ok) {
      full = weft::agent::ToDesiredState(*full_state);
      full_ok = full.ok();
    }
    if (full_ok && !pending.ok() && VipSanityRefusal(pending.status())) return;
    if (full_ok != pending.ok())
      Fail("snapshot: full conversion " + std::string(full_ok ? "accepts" : "refuses") +
           " what the agent's conversion " + (pending.ok() ? "accepts" : "refuses") + ": " +
           (pending.ok() ? full.status().message() : pending.status().message()));
    if (!pending.ok()) return;
    if (!SameDesired(pending->desired, *full)) Fail("snapshot: the two conversions disagree");
    cc.Commit(std::move(*pending));
    have_state = true;
    return;
  }
  if (!msg.has_delta() || !have_state) return;
  NodeConfigState full_state = cc.state();
  if (!full_state.ApplyDelta(msg.delta()).ok()) {
    // The agent's conversion must refuse it as well, and change nothing.
    if (cc.PrepareDelta(msg.delta()).ok()) Fail("delta: the state refuses a delta the conversion accepts");
    return;
  }
  auto full = weft::agent::ToDesiredState(full_state);
  const size_t before = cc.state().services.size();
  auto inc = cc.PrepareDelta(msg.delta());
  if (full.ok() && !inc.ok() && VipSanityRefusal(inc.status())) {
    if (cc.state().services.size() != before) Fail("delta: a refused delta changed the state");
    return;
  }
  if (full.ok() != inc.ok())
    Fail("delta: full conversion " + std::string(full.ok() ? "accepts" : "refuses") + " what the incremental one " +
         (inc.ok() ? "accepts" : "refuses") + ": " + (inc.ok() ? full.status().message() : inc.status().message()));
  if (!inc.ok()) {
    if (cc.state().services.size() != before) Fail("delta: a refused delta changed the state");
    return;
  }
  if (!SameDesired(inc->desired, *full)) Fail("delta: incremental and full conversions disagree");
  cc.Commit(std::move(*inc));
  if (!SameDesired(cc.desired(), *full)) Fail("delta: the committed desired state is not the full conversion");
}

// Policy side: the same push on a copy, then the maps of every placement.
void CheckPolicy(weft::policy::PolicyConfig& config, bool& have_state, const weft::v1::ControllerMessage& msg) {
  weft::policy::PolicyConfig next;
  if (msg.has_snapshot()) {
    auto snap = weft::policy::PolicyConfig::FromSnapshot(msg.snapshot());
    if (!snap.ok()) return;
    next = std::move(*snap);
  } else if (msg.has_delta() && have_state) {
    next = config;
    if (!next.ApplyDelta(msg.delta()).ok()) return;
  } else {
    return;
  }
  auto desired = weft::policy::BuildPolicyDesired(next);
  if (!desired.ok()) return;  // the agent NACKs and keeps `config`
  config = std::move(next);
  have_state = true;
  std::map<std::string, weft::policy::Placement> placement;
  uint32_t n = 0;
  for (const auto& [name, ep] : desired->endpoints) {
    if (++n % 3 == 0) continue;  // some workloads are not placed (no interface yet)
    placement[name] = {100 + n, n};
  }
  auto kernel = weft::policy::ToKernel(*desired, placement);
  for (const auto& [key, val] : kernel.policy) {
    bool placed = false;
    for (const auto& [ifindex, ep] : kernel.endpoints) placed |= ep.ep_id == key.ep_id;
    if (!placed) Fail("policy entry for endpoint id " + std::to_string(key.ep_id) + " with no endpoint");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ConvertedConfig cc;
  weft::policy::PolicyConfig policy;
  bool lb_state = false, policy_state = false;
  SilentErrors errors;
  google::protobuf::TextFormat::Parser parser;
  parser.AllowPartialMessage(true);
  parser.RecordErrorsTo(&errors);
  for (std::string_view part : SplitMessages(text)) {
    weft::v1::ControllerMessage msg;
    google::protobuf::io::ArrayInputStream in(part.data(), static_cast<int>(part.size()));
    if (!parser.Parse(&in, &msg)) continue;  // not a message: the fuzzer's noise
    CheckLb(cc, lb_state, msg);
    CheckPolicy(policy, policy_state, msg);
  }
  return 0;
}
