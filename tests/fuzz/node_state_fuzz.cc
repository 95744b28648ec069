// Fuzz target: the controller's pushes -> the agent's node state
// (agent/node_state.hpp), what the agent does with every ControllerMessage
// before anything reaches a map.
//
// Input: protobuf text format of weft.v1.ControllerMessage, several separated
// by a line "---" (a stream: a snapshot replaces the state, a delta applies
// onto it). Text format keeps the committed seeds readable and lets the fuzzer
// reach the conversion logic instead of protobuf's own parser.
//
// Checks, per message, beyond "no crash, no sanitizer report":
//   - the node state's conversion (a snapshot, or a delta converted
//     incrementally, as the agent runs it) accepts exactly what the whole
//     conversion of the resulting config accepts (ToDesiredState,
//     PolicyState::Convert of the config the stream describes), but for the
//     VIP sanity checks only the node state makes (a VIP outside the node's
//     ranges or on a workload's address) and the removal of an identity-cache
//     entry that cannot be one; and gives the same services and policy;
//   - a refused push changes nothing, and so does a Revert (a NACK: some
//     pushes are reverted instead of committed);
//   - ToKernel of the policy, for any placement, holds policy entries only for
//     placed endpoints.
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

#include "agent/node_state.hpp"
#include "agent/policy/desired.hpp"
#include "agent/proto_convert.hpp"
#include "tests/support/node_config_delta.hpp"

namespace {

// The fuzzer's inputs are mostly not valid text format: stay quiet about it.
class SilentErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
};

using weft::agent::NodeState;
using weft::policy::PolicyDesired;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "node_state_fuzz: %s\n", what.c_str());
  std::abort();
}

// The refusals only the node state makes (node_state.hpp: VIP sanity).
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

template <typename M>
bool SamePods(const M& a, const M& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (std::memcmp(&ia->first, &ib->first, sizeof ia->first) != 0 ||
        std::memcmp(&ia->second, &ib->second, sizeof ia->second) != 0)
      return false;
  return true;
}

bool SamePolicy(const PolicyDesired& a, const PolicyDesired& b) {
  if (a.endpoints.size() != b.endpoints.size() || !SamePods(a.identity, b.identity) ||
      a.identities.size() != b.identities.size() || a.policy_names.size() != b.policy_names.size())
    return false;
  for (auto ia = a.endpoints.begin(), ib = b.endpoints.begin(); ia != a.endpoints.end(); ++ia, ++ib) {
    const auto &x = ia->second, &y = ib->second;
    if (ia->first != ib->first || x.addresses != y.addresses || x.identity != y.identity ||
        x.enforce_ingress != y.enforce_ingress || x.enforce_egress != y.enforce_egress || x.policies != y.policies ||
        !SamePods(x.entries, y.entries))
      return false;
  }
  for (auto ia = a.identities.begin(), ib = b.identities.begin(); ia != a.identities.end(); ++ia, ++ib)
    if (ia->first != ib->first || ia->second.spiffe_id != ib->second.spiffe_id || ia->second.ns != ib->second.ns ||
        ia->second.service_account != ib->second.service_account || ia->second.cidrs != ib->second.cidrs)
      return false;
  for (auto ia = a.policy_names.begin(), ib = b.policy_names.begin(); ia != a.policy_names.end(); ++ia, ++ib)
    if (ia->first != ib->first || ia->second.name != ib->second.name || ia->second.action != ib->second.action)
      return false;
  return true;
}

bool SameState(const NodeState& s, const weft::lb::DesiredState& lb, const PolicyDesired& policy) {
  return SameDesired(s.services(), lb) && SamePolicy(s.policy(), policy);
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

// A delta that removes an identity-cache entry that cannot be one: the node
// state refuses it, the whole config never held it.
bool RemovesInvalidCacheEntry(const weft::v1::NodeConfigDelta& d) {
  for (const auto& e : d.removed_identity_cache())
    if (!weft::policy::IdentityCacheKeysOf(e).ok()) return true;
  return false;
}

struct Stream {
  NodeState state;
  weft::v1::NodeConfig whole;  // the config the accepted pushes describe
  bool have_state = false;
};

void Check(Stream& s, weft::v1::ControllerMessage& msg) {
  weft::v1::NodeConfig next;
  if (msg.has_snapshot()) {
    next = msg.snapshot();
  } else if (msg.has_delta() && s.have_state) {
    next = s.whole;
    weft::testing::ApplyDeltaToConfig(&next, msg.delta());
  } else {
    return;
  }
  auto lb = weft::agent::ToDesiredState(next);
  auto policy = weft::policy::PolicyState::Convert(next);
  const bool whole_ok = lb.ok() && policy.ok();
  const weft::lb::DesiredState lb_before = s.state.services();
  const PolicyDesired policy_before = s.state.policy();
  auto r = msg.has_snapshot() ? s.state.ApplySnapshot(msg.snapshot(), msg.version())
                              : s.state.ApplyDelta(msg.delta(), msg.version());
  const char* kind = msg.has_snapshot() ? "snapshot" : "delta";
  if (!r.ok()) {
    if (!SameState(s.state, lb_before, policy_before)) Fail(std::string(kind) + ": a refused push changed the state");
    if (whole_ok && !VipSanityRefusal(r.status()) && !(msg.has_delta() && RemovesInvalidCacheEntry(msg.delta())))
      Fail(std::string(kind) + ": the node state refuses what the whole conversion accepts: " + r.status().message());
    return;
  }
  if (!whole_ok)
    Fail(std::string(kind) + ": the node state accepts what the whole conversion refuses: " +
         (lb.ok() ? policy.status().message() : lb.status().message()));
  if (!SameState(s.state, *lb, *policy)) Fail(std::string(kind) + ": the node state is not the whole conversion");
  if (msg.version() % 5 == 4) {  // NACKed
    s.state.Revert();
    if (!SameState(s.state, lb_before, policy_before)) Fail(std::string(kind) + ": Revert is not the state before");
    return;
  }
  s.state.Commit();
  s.whole = std::move(next);
  s.have_state = true;
  // Any placement: policy entries only for placed endpoints.
  std::map<std::string, weft::policy::Placement> placement;
  uint32_t n = 0;
  for (const auto& [name, ep] : s.state.policy().endpoints) {
    if (++n % 3 == 0) continue;  // some workloads are not placed (no interface yet)
    placement[name] = {100 + n, n};
  }
  auto kernel = weft::policy::ToKernel(s.state.policy(), placement);
  for (const auto& [key, val] : kernel.policy) {
    bool placed = false;
    for (const auto& [ifindex, ep] : kernel.endpoints) placed |= ep.ep_id == key.ep_id;
    if (!placed) Fail("policy entry for endpoint id " + std::to_string(key.ep_id) + " with no endpoint");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Stream stream;
  SilentErrors errors;
  google::protobuf::TextFormat::Parser parser;
  parser.AllowPartialMessage(true);
  parser.RecordErrorsTo(&errors);
  for (std::string_view part : SplitMessages(text)) {
    weft::v1::ControllerMessage msg;
    google::protobuf::io::ArrayInputStream in(part.data(), static_cast<int>(part.size()));
    if (!parser.Parse(&in, &msg)) continue;  // not a message: the fuzzer's noise
    Check(stream, msg);
  }
  return 0;
}
