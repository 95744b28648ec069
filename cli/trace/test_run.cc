#include "cli/trace/test_run.hpp"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "weft/bpf_abi.h"

namespace weft::cli::trace {

namespace {

void Put16(uint8_t* p, uint32_t v) { p[0] = (v >> 8) & 0xff, p[1] = v & 0xff; }
void Put32(uint8_t* p, uint32_t v) { Put16(p, v >> 16), Put16(p + 2, v & 0xffff); }
uint32_t Sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t(p[i]) << 8) | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  return s;
}
uint16_t Fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s & 0xffff);
}

}  // namespace

std::vector<uint8_t> BuildPacket(const Probe& p) {
  const bool v6 = !p.src.is_v4();
  std::vector<uint8_t> l4;
  if (p.proto == IPPROTO_TCP) {
    l4.assign(20, 0);
    Put16(&l4[0], p.sport), Put16(&l4[2], p.dport), Put32(&l4[4], 0x5745f700u);
    l4[12] = 5 << 4;
    l4[13] = 0x02;  // SYN
    Put16(&l4[14], 64240);
  } else {
    l4.assign(16, 0);
    Put16(&l4[0], p.sport), Put16(&l4[2], p.dport), Put16(&l4[4], l4.size());
    std::memcpy(&l4[8], "wefttrac", 8);
  }
  // Pseudo-header checksum.
  uint32_t ph = 0;
  if (v6) {
    ph = Sum(p.src.bytes().data(), 16, ph);
    ph = Sum(p.dst.bytes().data(), 16, ph);
    ph += static_cast<uint32_t>(l4.size()) + p.proto;
  } else {
    ph = Sum(p.src.bytes().data() + 12, 4, ph);
    ph = Sum(p.dst.bytes().data() + 12, 4, ph);
    ph += static_cast<uint32_t>(l4.size()) + p.proto;
  }
  uint16_t ck = Fold(Sum(l4.data(), l4.size(), ph));
  if (p.proto == IPPROTO_UDP && ck == 0) ck = 0xffff;
  Put16(&l4[p.proto == IPPROTO_TCP ? 16 : 6], ck);

  std::vector<uint8_t> pkt(14);
  const uint8_t dmac[6] = {0x02, 0x77, 0x65, 0x66, 0x74, 0x02}, smac[6] = {0x02, 0x77, 0x65, 0x66, 0x74, 0x01};
  std::memcpy(&pkt[0], dmac, 6), std::memcpy(&pkt[6], smac, 6);
  Put16(&pkt[12], v6 ? ETH_P_IPV6 : ETH_P_IP);
  if (v6) {
    std::vector<uint8_t> ip(40, 0);
    ip[0] = 0x60;
    Put16(&ip[4], l4.size());
    ip[6] = p.proto, ip[7] = 64;
    std::memcpy(&ip[8], p.src.bytes().data(), 16), std::memcpy(&ip[24], p.dst.bytes().data(), 16);
    pkt.insert(pkt.end(), ip.begin(), ip.end());
  } else {
    std::vector<uint8_t> ip(20, 0);
    ip[0] = 0x45;
    Put16(&ip[2], 20 + l4.size());
    Put16(&ip[6], 0x4000);  // DF
    ip[8] = 64, ip[9] = p.proto;
    std::memcpy(&ip[12], p.src.bytes().data() + 12, 4), std::memcpy(&ip[16], p.dst.bytes().data() + 12, 4);
    Put16(&ip[10], Fold(Sum(ip.data(), ip.size())));
    pkt.insert(pkt.end(), ip.begin(), ip.end());
  }
  pkt.insert(pkt.end(), l4.begin(), l4.end());
  return pkt;
}

Result<bool> SupportsTraceMode(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return Status::Errno("read program info", errno);
  if (info.xlated_prog_len == 0)
    return Status::Error("read program instructions: the kernel shows none (kernel.kptr_restrict / not root?)");
  std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
  uint32_t n = info.xlated_prog_len;
  std::memset(&info, 0, sizeof(info));
  info.xlated_prog_len = n;
  info.xlated_prog_insns = reinterpret_cast<uint64_t>(insns.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return Status::Errno("read program instructions", errno);
  for (const auto& i : insns)
    if (static_cast<uint32_t>(i.imm) == WEFT_TRACE_MAGIC) return true;
  return false;
}

Result<TraceResult> RunTrace(int prog_fd, uint32_t ifindex, const std::vector<uint8_t>& packet) {
  __sk_buff ctx_in{}, ctx_out{};
  ctx_in.ifindex = ifindex;
  ctx_in.mark = WEFT_TRACE_MARK;
  ctx_in.cb[WEFT_TRACE_CB_MAGIC] = WEFT_TRACE_MAGIC;
  std::vector<uint8_t> out(packet.size() + 512);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(packet.size()), .data_size_out = static_cast<__u32>(out.size()),
              .ctx_in = &ctx_in, .ctx_out = &ctx_out, .ctx_size_in = sizeof(ctx_in),
              .ctx_size_out = sizeof(ctx_out), .repeat = 1);
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
    return Status::Errno("BPF_PROG_TEST_RUN (ctx ifindex " + std::to_string(ifindex) + ")", errno);
  TraceResult r;
  r.retval = static_cast<int>(opts.retval);
  std::memcpy(r.cb, ctx_out.cb, sizeof(r.cb));
  r.acknowledged = r.cb[WEFT_TRACE_CB_MAGIC] == 0;
  uint32_t res = r.cb[WEFT_TRACE_CB_RESULT];
  r.verdict = res & 0xff;
  r.reason = (res >> 8) & 0xff;
  r.stage = (res >> 16) & 0xff;
  r.policy_id = r.cb[WEFT_TRACE_CB_POLICY];
  r.peer_identity = r.cb[WEFT_TRACE_CB_PEER];
  r.ep_id = r.cb[WEFT_TRACE_CB_EP];
  return r;
}

std::string TcActName(int r) {
  switch (r) {
    case TC_ACT_OK:
      return "ok";
    case TC_ACT_SHOT:
      return "shot";
    case TC_ACT_REDIRECT:
      return "redirect";
    case TC_ACT_UNSPEC:
      return "unspec";
    case TC_ACT_PIPE:
      return "pipe";
    default:
      return "act-" + std::to_string(r);
  }
}

}  // namespace weft::cli::trace
