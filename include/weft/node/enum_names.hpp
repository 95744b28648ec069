// The names of the ABI's enums (include/weft/bpf_abi.h), as the agent's
// metrics, weftctl's views and the tests print them. One table per enum,
// checked against the enum's size at compile time (reason codes are
// append-only: a new one needs its name here or the build fails). A value
// this build does not know is shown with its number ("reason_9").
#pragma once

#include <cstdint>
#include <string>

namespace weft::node {

std::string DropReasonName(uint32_t reason);  // enum weft_drop_reason: "none", "policy_denied", ...
std::string VerdictName(uint8_t verdict);     // enum weft_verdict: "none", "allow", "deny", "steer"
// A verdict as a flow's outcome (metrics label, weftctl trace): "allowed",
// "denied", "steered", "none".
std::string VerdictOutcome(uint8_t verdict);
bool VerdictAllows(uint8_t verdict);           // ALLOW or STEER (STEER passes until the proxy exists)
std::string DirectionName(uint8_t direction);  // enum weft_direction: "ingress", "egress"
std::string ProtoName(uint8_t proto);          // "tcp", "udp", "any" (0: a wildcard)
std::string AlgoName(uint8_t algo);            // enum weft_lb_algo: "random", "maglev"
std::string LbStatName(uint32_t stat);         // enum weft_lb_stat: "connect_rewritten", ...
std::string TraceStageName(uint8_t stage);     // enum weft_trace_stage: "policy", "no_endpoint", ...
// enum weft_identity_reserved: "any", "unknown", "world", "host"; "" for any other.
std::string ReservedIdentityName(uint32_t identity);

}  // namespace weft::node
