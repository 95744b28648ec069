// How the kernel programs decide, for user space to predict and explain
// (weftctl trace, the controller's lowering, the tests):
//   - Maglev's client pick (bpf/lib/lb.h, with weft_client_hash of
//     weft/bpf_abi.h: the same function the BPF runs);
//   - the weft_policy lookup order and what its first hit means
//     (bpf/lib/policy.h weft_policy_eval; documented in weft/bpf_abi.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "weft/bpf_abi.h"

namespace weft::node {

// The slot a WEFT_LB_MAGLEV service picks for a client whose socket is in the
// network namespace with this cookie (SO_NETNS_COOKIE); 0 without slots.
uint32_t MaglevSlot(uint64_t netns_cookie, uint32_t slot_count);

// One weft_policy lookup: (peer identity, destination port); 0 is the wildcard
// of either (WEFT_IDENTITY_ANY, port 0).
struct PolicyLookup {
  uint32_t peer = 0;
  uint16_t port = 0;
};
inline constexpr size_t kPolicyLookups = 4;
// (peer, port) -> (peer, any port) -> (any peer, port) -> (any, any): the
// first entry found decides.
std::array<PolicyLookup, kPolicyLookups> PolicyLookupOrder(uint32_t peer, uint16_t port);
// The key of one lookup for an endpoint, protocol and direction.
weft_policy_key PolicyKey(uint32_t ep_id, const PolicyLookup& l, uint8_t proto, uint8_t direction);

// What the program decides for a new flow in a direction its endpoint
// enforces: the first entry found (nullptr: none) and the peer's identity.
// ALLOW and STEER pass (STEER until the node proxy exists); anything else
// denies with the entry's reason (0: policy_denied); no entry denies by
// default (no_identity for an unknown peer, else policy_default).
struct PolicyOutcome {
  uint8_t verdict = WEFT_VERDICT_NONE;  // enum weft_verdict
  uint8_t reason = WEFT_DROP_NONE;      // enum weft_drop_reason
  uint32_t policy_id = 0;
};
PolicyOutcome DecidePolicy(const weft_policy_val* first_hit, uint32_t peer);

}  // namespace weft::node
