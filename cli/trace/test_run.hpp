// Runs a pinned TC policy program on a synthetic packet in trace mode
// (BPF_PROG_TEST_RUN with __sk_buff.mark = WEFT_TRACE_MARK and
// cb[WEFT_TRACE_CB_MAGIC] = WEFT_TRACE_MAGIC, see weft/bpf_abi.h) and decodes
// what the program wrote back into cb[].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::cli::trace {

struct Probe {
  IpAddr src, dst;  // same family
  uint16_t sport = 0, dport = 0;  // host byte order
  uint8_t proto = 0;              // IPPROTO_TCP (a SYN) or IPPROTO_UDP
};

// Ethernet + IPv4/IPv6 + TCP SYN (no options) or UDP with 8 bytes of payload,
// checksums filled in.
std::vector<uint8_t> BuildPacket(const Probe& p);

struct TraceResult {
  int retval = 0;       // TC_ACT_*
  bool acknowledged = false;  // cb[MAGIC] came back 0: the program ran in trace mode
  uint8_t verdict = 0, reason = 0, stage = 0;
  uint32_t policy_id = 0, peer_identity = 0, ep_id = 0;
  uint32_t cb[5] = {};
};

// Whether the program's instructions contain WEFT_TRACE_MAGIC (a program
// without trace mode would run for real: conntrack, flow counts, a RST).
// Error when the instructions cannot be read.
Result<bool> SupportsTraceMode(int prog_fd);

// Runs prog_fd once with ctx ifindex = `ifindex`. Call from a thread that is in
// the network namespace where `ifindex` exists (the kernel resolves it there).
Result<TraceResult> RunTrace(int prog_fd, uint32_t ifindex, const std::vector<uint8_t>& packet);

std::string TcActName(int retval);     // "ok", "shot", "redirect", ...

}  // namespace weft::cli::trace
