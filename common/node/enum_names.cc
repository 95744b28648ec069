#include "weft/node/enum_names.hpp"

#include <netinet/in.h>

#include <iterator>

#include "weft/bpf_abi.h"

namespace weft::node {

namespace {

template <size_t N>
std::string FromTable(const char* const (&names)[N], uint32_t v, const char* unknown_prefix) {
  return v < N ? names[v] : unknown_prefix + std::to_string(v);
}

}  // namespace

std::string DropReasonName(uint32_t reason) {
  static const char* const kNames[] = {"none",       "policy_denied", "policy_default", "no_identity",
                                       "ct_invalid", "malformed",     "forged_source"};
  static_assert(std::size(kNames) == WEFT_DROP_MAX, "a name per enum weft_drop_reason");
  return FromTable(kNames, reason, "reason_");
}

std::string VerdictName(uint8_t verdict) {
  static const char* const kNames[] = {"none", "allow", "deny", "steer"};
  static_assert(WEFT_VERDICT_NONE == 0 && WEFT_VERDICT_ALLOW == 1 && WEFT_VERDICT_DENY == 2 &&
                WEFT_VERDICT_STEER == 3);
  return FromTable(kNames, verdict, "verdict-");
}

std::string VerdictOutcome(uint8_t verdict) {
  switch (verdict) {
    case WEFT_VERDICT_ALLOW: return "allowed";
    case WEFT_VERDICT_DENY: return "denied";
    case WEFT_VERDICT_STEER: return "steered";
    default: return "none";
  }
}

bool VerdictAllows(uint8_t verdict) { return verdict == WEFT_VERDICT_ALLOW || verdict == WEFT_VERDICT_STEER; }

std::string DirectionName(uint8_t direction) {
  static const char* const kNames[] = {"ingress", "egress"};
  static_assert(WEFT_DIR_INGRESS == 0 && WEFT_DIR_EGRESS == 1);
  return FromTable(kNames, direction, "dir-");
}

std::string ProtoName(uint8_t proto) {
  if (proto == IPPROTO_TCP) return "tcp";
  if (proto == IPPROTO_UDP) return "udp";
  if (proto == 0) return "any";
  return std::to_string(proto);
}

std::string AlgoName(uint8_t algo) {
  static const char* const kNames[] = {"random", "maglev"};
  static_assert(WEFT_LB_RANDOM == 0 && WEFT_LB_MAGLEV == 1);
  return FromTable(kNames, algo, "algo-");
}

std::string LbStatName(uint32_t stat) {
  static const char* const kNames[] = {"connect_rewritten", "no_backend",     "slot_miss",
                                       "sendmsg_rewritten", "recvmsg_revnat", "revnat_update_err"};
  static_assert(std::size(kNames) == WEFT_STAT_MAX, "a name per enum weft_lb_stat");
  return FromTable(kNames, stat, "stat_");
}

std::string TraceStageName(uint8_t stage) {
  static const char* const kNames[] = {"none",      "no_endpoint", "not_enforced", "not_l4",
                                       "malformed", "conntrack",   "policy",       "unenforced_direction",
                                       "source"};
  static_assert(std::size(kNames) == WEFT_TRACE_STAGE_SOURCE + 1, "a name per enum weft_trace_stage");
  return FromTable(kNames, stage, "stage_");
}

std::string ReservedIdentityName(uint32_t identity) {
  switch (identity) {
    case WEFT_IDENTITY_ANY: return "any";
    case WEFT_IDENTITY_UNKNOWN: return "unknown";
    case WEFT_IDENTITY_WORLD: return "world";
    case WEFT_IDENTITY_HOST: return "host";
    default: return "";
  }
}

}  // namespace weft::node
