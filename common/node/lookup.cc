#include "weft/node/lookup.hpp"

namespace weft::node {

uint32_t MaglevSlot(uint64_t netns_cookie, uint32_t slot_count) {
  return slot_count ? weft_client_hash(netns_cookie) % slot_count : 0;
}

std::array<PolicyLookup, kPolicyLookups> PolicyLookupOrder(uint32_t peer, uint16_t port) {
  return {{{peer, port}, {peer, 0}, {WEFT_IDENTITY_ANY, port}, {WEFT_IDENTITY_ANY, 0}}};
}

weft_policy_key PolicyKey(uint32_t ep_id, const PolicyLookup& l, uint8_t proto, uint8_t direction) {
  weft_policy_key k{};
  k.ep_id = ep_id;
  k.peer_identity = l.peer;
  k.port = l.port;
  k.proto = proto;
  k.direction = direction;
  return k;
}

PolicyOutcome DecidePolicy(const weft_policy_val* hit, uint32_t peer) {
  PolicyOutcome o;
  if (!hit) {
    o.verdict = WEFT_VERDICT_DENY;
    o.reason = peer == WEFT_IDENTITY_UNKNOWN ? WEFT_DROP_NO_IDENTITY : WEFT_DROP_POLICY_DEFAULT;
    return o;
  }
  o.policy_id = hit->policy_id;
  if (hit->verdict == WEFT_VERDICT_ALLOW || hit->verdict == WEFT_VERDICT_STEER) {
    o.verdict = hit->verdict;
  } else {
    o.verdict = WEFT_VERDICT_DENY;
    o.reason = hit->reason ? hit->reason : static_cast<uint8_t>(WEFT_DROP_POLICY_DENIED);
  }
  return o;
}

}  // namespace weft::node
