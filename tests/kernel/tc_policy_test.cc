// Kernel tests of bpf/tc_policy.bpf.c (label `kernel`, RUN_SERIAL).
//
// 1. TcPolicyTable: BPF_PROG_TEST_RUN over synthetic packets from a small
//    fluent builder. test_run gives the skb the loopback device unless
//    ctx_in names another device of our netns, so the "managed pod" in these
//    rows is ifindex 1 (LOOPBACK_IFINDEX); "unmanaged" simply has no
//    weft_endpoints entry.
// 2. TcPolicyTraffic: a node netns N with two veth pairs to pod netns P1, P2,
//    routing (forwarding on) in N, the programs on N's host-side veths via
//    bpf_tc_hook_create/bpf_tc_attach. Real TCP/UDP through them.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernel/support/kernel_env.hpp"
#include "weft/flow_aggregates.hpp"
#include "weft/sys.hpp"
#include "weft/tc_policy.skel.h"
#include "weft/unique_fd.hpp"

namespace weft::ktest {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr int kFromPod = 0, kToPod = 1;

// ---- packet builder ------------------------------------------------------------
class PacketBuilder {
 public:
  PacketBuilder& Ipv4(const std::string& src, const std::string& dst) {
    v6_ = false;
    inet_pton(AF_INET, src.c_str(), src_);
    inet_pton(AF_INET, dst.c_str(), dst_);
    return *this;
  }
  PacketBuilder& Ipv6(const std::string& src, const std::string& dst) {
    v6_ = true;
    inet_pton(AF_INET6, src.c_str(), src_);
    inet_pton(AF_INET6, dst.c_str(), dst_);
    return *this;
  }
  PacketBuilder& Tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1000) {
    proto_ = IPPROTO_TCP;
    sport_ = sport, dport_ = dport, flags_ = flags, seq_ = seq;
    return *this;
  }
  PacketBuilder& Udp(uint16_t sport, uint16_t dport) {
    proto_ = IPPROTO_UDP;
    sport_ = sport, dport_ = dport;
    return *this;
  }
  PacketBuilder& Proto(uint8_t p) {
    proto_ = p;
    return *this;
  }
  PacketBuilder& Payload(size_t n) {
    payload_ = n;
    return *this;
  }
  PacketBuilder& Ihl(uint8_t ihl) {
    ihl_ = ihl;
    return *this;
  }
  PacketBuilder& TruncateTo(size_t n) {
    trunc_ = n;
    return *this;
  }

  std::vector<uint8_t> Build() const {
    std::vector<uint8_t> l4;
    if (proto_ == IPPROTO_TCP) {
      l4.resize(20 + payload_);
      Put16(&l4[0], sport_), Put16(&l4[2], dport_), Put32(&l4[4], seq_);
      l4[12] = 5 << 4;
      l4[13] = flags_;
      Put16(&l4[14], 65535);
    } else if (proto_ == IPPROTO_UDP) {
      l4.resize(8 + payload_);
      Put16(&l4[0], sport_), Put16(&l4[2], dport_), Put16(&l4[4], l4.size());
    } else {
      l4.resize(8 + payload_);  // e.g. ICMP echo, content irrelevant
    }
    std::vector<uint8_t> p(14);
    const uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 0x02}, smac[6] = {0x02, 0, 0, 0, 0, 0x01};
    std::memcpy(&p[0], dmac, 6), std::memcpy(&p[6], smac, 6);
    Put16(&p[12], v6_ ? ETH_P_IPV6 : ETH_P_IP);
    if (v6_) {
      std::vector<uint8_t> ip(40);
      ip[0] = 0x60;
      Put16(&ip[4], l4.size());
      ip[6] = proto_, ip[7] = 64;
      std::memcpy(&ip[8], src_, 16), std::memcpy(&ip[24], dst_, 16);
      p.insert(p.end(), ip.begin(), ip.end());
    } else {
      std::vector<uint8_t> ip(20);
      ip[0] = 0x40 | ihl_;
      Put16(&ip[2], 20 + l4.size());
      ip[8] = 64, ip[9] = proto_;
      std::memcpy(&ip[12], src_, 4), std::memcpy(&ip[16], dst_, 4);
      p.insert(p.end(), ip.begin(), ip.end());
    }
    p.insert(p.end(), l4.begin(), l4.end());
    if (trunc_ && trunc_ < p.size()) p.resize(trunc_);
    return p;
  }

  static void Put16(uint8_t* p, uint32_t v) { p[0] = v >> 8, p[1] = v & 0xff; }
  static void Put32(uint8_t* p, uint32_t v) { Put16(p, v >> 16), Put16(p + 2, v & 0xffff); }

 private:
  bool v6_ = false;
  uint8_t src_[16] = {}, dst_[16] = {};
  uint8_t proto_ = IPPROTO_TCP, flags_ = 0;
  uint16_t sport_ = 0, dport_ = 0;
  uint32_t seq_ = 0;
  size_t payload_ = 0, trunc_ = 0;
  uint8_t ihl_ = 5;
};

uint16_t Get16(const uint8_t* p) { return (p[0] << 8) | p[1]; }
uint32_t Get32(const uint8_t* p) { return (uint32_t(Get16(p)) << 16) | Get16(p + 2); }
uint32_t SumWords(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += Get16(p + i);
  if (n & 1) sum += p[n - 1] << 8;
  return sum;
}
uint16_t Fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

// ---- the loaded object ------------------------------------------------------------
struct SkelDeleter {
  void operator()(tc_policy* s) const {
    bpf_object__unpin_maps(s->obj, nullptr);
    tc_policy__destroy(s);
  }
};
using SkelPtr = std::unique_ptr<tc_policy, SkelDeleter>;

Result<SkelPtr> LoadTcPolicy(const std::string& pin_root) {
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.pin_root_path = pin_root.c_str();
  SkelPtr s(tc_policy__open_opts(&opts));
  if (!s) return Status::Errno("open tc_policy skeleton", errno);
  // Small maps for tests.
  bpf_map__set_max_entries(s->maps.weft_ct, 1 << 14);
  bpf_map__set_max_entries(s->maps.weft_identity, 1 << 10);
  bpf_map__set_max_entries(s->maps.weft_policy, 1 << 10);
  bpf_map__set_max_entries(s->maps.weft_flows, 1 << 12);
  bpf_map__set_max_entries(s->maps.weft_flow_ctr, 1 << 12);
  if (int err = tc_policy__load(s.get()); err != 0)
    return Status::Errno("load tc_policy (pins under " + pin_root + ")", -err);
  return s;
}

void ClearMap(bpf_map* m) {
  int fd = bpf_map__fd(m);
  std::vector<uint8_t> key(bpf_map__key_size(m));
  while (bpf_map_get_next_key(fd, nullptr, key.data()) == 0)
    if (bpf_map_delete_elem(fd, key.data()) != 0) break;
}

void ZeroPercpuArray(bpf_map* m) {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> zero(ncpu, 0);
  for (uint32_t i = 0; i < bpf_map__max_entries(m); ++i)
    bpf_map_update_elem(bpf_map__fd(m), &i, zero.data(), BPF_ANY);
}

uint64_t PercpuArraySum(bpf_map* m, uint32_t idx) {
  std::vector<uint64_t> v(libbpf_num_possible_cpus());
  if (bpf_map_lookup_elem(bpf_map__fd(m), &idx, v.data()) != 0) return ~0ull;
  uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

// The counters of a flow key, summed over CPUs; all zero if absent.
weft_flow_val FlowSum(tc_policy* s, const weft_flow_key& k) {
  auto v = flows::ReadAggregate(bpf_map__fd(s->maps.weft_flows), bpf_map__fd(s->maps.weft_flow_ctr), k);
  EXPECT_TRUE(v.ok()) << v.status().message();
  return v.ok() ? *v : weft_flow_val{};
}

// direction: where the flow was seen (the local endpoint's side of it).
weft_flow_key FlowKey(uint32_t src, uint32_t dst, uint16_t dport, uint8_t proto, uint8_t verdict,
                      uint32_t reason, uint32_t policy_id, uint8_t direction) {
  weft_flow_key k{};
  k.src_identity = src, k.dst_identity = dst, k.dport = dport, k.proto = proto, k.verdict = verdict;
  k.reason = static_cast<uint8_t>(reason), k.direction = direction, k.policy_id = policy_id;
  return k;
}

Status PutIdentity(tc_policy* s, const std::string& ip, uint32_t plen, uint32_t identity) {
  weft_ipcache_key k{};
  if (!ParseAbiAddr(ip, k.addr)) return Status::Error("bad address " + ip);
  k.prefixlen = (ip.find(':') == std::string::npos ? 96 : 0) + plen;
  weft_ipcache_val v{identity, 0};
  if (bpf_map_update_elem(bpf_map__fd(s->maps.weft_identity), &k, &v, BPF_ANY) != 0)
    return Status::Errno("put identity " + ip, errno);
  return Status::Ok();
}

Status PutEndpoint(tc_policy* s, uint32_t ifindex, uint32_t ep_id, uint32_t identity, bool in, bool eg) {
  weft_endpoint e{};
  e.ep_id = ep_id, e.identity = identity, e.enforce_ingress = in, e.enforce_egress = eg;
  if (bpf_map_update_elem(bpf_map__fd(s->maps.weft_endpoints), &ifindex, &e, BPF_ANY) != 0)
    return Status::Errno("put endpoint " + std::to_string(ifindex), errno);
  return Status::Ok();
}

struct PolicyEntry {
  uint32_t ep_id, peer;
  uint16_t port;
  uint8_t proto, dir, verdict;
  uint32_t policy_id;
};

Status PutPolicy(tc_policy* s, const PolicyEntry& p) {
  weft_policy_key k{};
  k.ep_id = p.ep_id, k.peer_identity = p.peer, k.port = p.port, k.proto = p.proto, k.direction = p.dir;
  weft_policy_val v{};
  v.verdict = p.verdict, v.policy_id = p.policy_id;
  if (bpf_map_update_elem(bpf_map__fd(s->maps.weft_policy), &k, &v, BPF_ANY) != 0)
    return Status::Errno("put policy", errno);
  return Status::Ok();
}

struct RunOut {
  int ret = -1;
  std::vector<uint8_t> out;
};

RunOut TestRun(tc_policy* s, int prog, const std::vector<uint8_t>& pkt) {
  RunOut r;
  r.out.resize(pkt.size() + 256);
  __sk_buff ctx{};
  ctx.ifindex = 1;  // LOOPBACK_IFINDEX: the device test_run gives the skb
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_out = r.out.data(),
              .data_size_in = static_cast<__u32>(pkt.size()),
              .data_size_out = static_cast<__u32>(r.out.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = 1);
  bpf_program* p = prog == kFromPod ? s->progs.weft_tc_from_pod : s->progs.weft_tc_to_pod;
  int err = bpf_prog_test_run_opts(bpf_program__fd(p), &opts);
  if (err != 0) {
    r.ret = -1000 + err;
    return r;
  }
  r.ret = static_cast<int>(opts.retval);
  r.out.resize(opts.data_size_out);
  return r;
}

// ---- table-driven test ---------------------------------------------------------
constexpr const char* kPod = "10.0.0.1";
constexpr const char* kPeer = "10.0.0.2";
constexpr const char* kPod6 = "fd00::1";
constexpr const char* kPeer6 = "fd00::2";
constexpr uint32_t kEp = 7, kPodId = 1001, kPeerId = 1002, kNetId = 1003;

struct Step {
  int prog;
  std::vector<uint8_t> pkt;
  int want;  // TC_ACT_*
};
struct Row {
  const char* name;
  bool managed, enforce_in, enforce_eg;
  std::vector<PolicyEntry> policy;
  std::vector<Step> steps;
  int drop_reason;  // counted once, or -1: no drop at all
};

PolicyEntry Pol(uint32_t peer, uint16_t port, uint8_t proto, uint8_t dir, uint8_t verdict, uint32_t id) {
  return PolicyEntry{kEp, peer, port, proto, dir, verdict, id};
}
PacketBuilder Out4() { return PacketBuilder().Ipv4(kPod, kPeer); }
PacketBuilder In4(const char* from = kPeer) { return PacketBuilder().Ipv4(from, kPod); }

std::vector<Row> Rows() {
  const uint8_t T = IPPROTO_TCP, U = IPPROTO_UDP, E = WEFT_DIR_EGRESS, I = WEFT_DIR_INGRESS;
  const uint8_t A = WEFT_VERDICT_ALLOW, D = WEFT_VERDICT_DENY;
  return {
      {"unmanaged ifindex passes", false, true, true, {},
       {{kFromPod, Out4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK}}, -1},
      {"endpoint without enforcement passes", true, false, false, {},
       {{kFromPod, Out4().Udp(40000, 53).Build(), TC_ACT_OK},
        {kToPod, In4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK}}, -1},
      {"exact (peer,port) allow", true, false, true, {Pol(kPeerId, 80, T, E, A, 5)},
       {{kFromPod, Out4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK}}, -1},
      {"(peer,ANY) allow", true, false, true, {Pol(kPeerId, 0, T, E, A, 6)},
       {{kFromPod, Out4().Tcp(40000, 8443, kSyn).Build(), TC_ACT_OK}}, -1},
      {"(peer,port) deny beats (peer,ANY) allow", true, false, true,
       {Pol(kPeerId, 0, T, E, A, 6), Pol(kPeerId, 22, U, E, D, 7)},
       {{kFromPod, Out4().Udp(40000, 22).Build(), TC_ACT_SHOT}}, WEFT_DROP_POLICY_DENIED},
      {"(ANY,port) deny, TCP SYN answered with a RST", true, true, false,
       {Pol(WEFT_IDENTITY_ANY, 22, T, I, D, 8)},
       {{kToPod, In4().Tcp(40000, 22, kSyn).Build(), TC_ACT_REDIRECT}}, WEFT_DROP_POLICY_DENIED},
      {"(ANY,ANY) explicit deny", true, false, true, {Pol(WEFT_IDENTITY_ANY, 0, U, E, D, 9)},
       {{kFromPod, Out4().Udp(40000, 53).Build(), TC_ACT_SHOT}}, WEFT_DROP_POLICY_DENIED},
      {"no entry while enforcing: default deny", true, false, true, {},
       {{kFromPod, Out4().Udp(40000, 53).Build(), TC_ACT_SHOT}}, WEFT_DROP_POLICY_DEFAULT},
      {"policy of the other direction does not apply", true, true, true, {Pol(kPeerId, 80, T, I, A, 5)},
       {{kFromPod, Out4().Udp(40000, 80).Build(), TC_ACT_SHOT}}, WEFT_DROP_POLICY_DEFAULT},
      {"unknown peer identity, no match: NO_IDENTITY", true, true, false, {Pol(kPeerId, 80, U, I, A, 5)},
       {{kToPod, In4("10.9.9.9").Udp(40000, 80).Build(), TC_ACT_SHOT}}, WEFT_DROP_NO_IDENTITY},
      {"unknown identity allowed by an (UNKNOWN,port) entry", true, true, false,
       {Pol(WEFT_IDENTITY_UNKNOWN, 80, U, I, A, 5)},
       {{kToPod, In4("10.9.9.9").Udp(40000, 80).Build(), TC_ACT_OK}}, -1},
      {"identity by LPM prefix (/24)", true, true, false, {Pol(kNetId, 80, T, I, A, 5)},
       {{kToPod, In4("10.0.1.77").Tcp(40000, 80, kSyn).Build(), TC_ACT_OK}}, -1},
      {"reply of an allowed flow passes after the request created CT", true, true, true,
       {Pol(kPeerId, 80, T, E, A, 5)},
       {{kFromPod, Out4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK},
        {kToPod, In4().Tcp(80, 40000, kSyn | kAck).Build(), TC_ACT_OK},
        {kFromPod, Out4().Tcp(40000, 80, kAck).Build(), TC_ACT_OK},
        {kToPod, In4().Tcp(80, 40000, kAck | kFin).Payload(100).Build(), TC_ACT_OK}}, -1},
      {"reply without a request is a new flow: denied", true, true, true, {Pol(kPeerId, 80, T, E, A, 5)},
       {{kToPod, In4().Tcp(80, 40000, kSyn | kAck).Build(), TC_ACT_SHOT}}, WEFT_DROP_POLICY_DEFAULT},
      {"non-SYN without entry (lenient) is evaluated and allowed", true, false, true,
       {Pol(kPeerId, 80, T, E, A, 5)},
       {{kFromPod, Out4().Tcp(40000, 80, kAck).Payload(10).Build(), TC_ACT_OK},
        {kToPod, In4().Tcp(80, 40000, kAck).Build(), TC_ACT_OK}}, -1},
      {"non-SYN without entry (lenient) is evaluated and denied: answered with a RST", true, false, true, {},
       {{kFromPod, Out4().Tcp(40000, 80, kAck).Build(), TC_ACT_REDIRECT}}, WEFT_DROP_POLICY_DEFAULT},
      {"denied SYN|ACK is dropped, not answered", true, true, true, {},
       {{kToPod, In4().Tcp(80, 40000, kSyn | kAck).Build(), TC_ACT_SHOT}}, WEFT_DROP_POLICY_DEFAULT},
      {"RST without entry passes (our own refusals)", true, true, true, {},
       {{kToPod, In4().Tcp(80, 40000, kRst | kAck).Build(), TC_ACT_OK}}, -1},
      {"ICMP is not policed", true, true, true, {},
       {{kFromPod, Out4().Proto(IPPROTO_ICMP).Build(), TC_ACT_OK}}, -1},
      // (test_run itself refuses an IPv4 packet shorter than an IPv4 header.)
      {"malformed: IPv4 IHL < 5", true, false, true, {},
       {{kFromPod, Out4().Tcp(40000, 80, kSyn).Ihl(4).Build(), TC_ACT_SHOT}}, WEFT_DROP_MALFORMED},
      {"malformed: UDP header cut short", true, false, true, {},
       {{kFromPod, Out4().Udp(40000, 53).TruncateTo(14 + 20 + 4).Build(), TC_ACT_SHOT}}, WEFT_DROP_MALFORMED},
      {"malformed: TCP header cut short", true, false, true, {},
       {{kFromPod, Out4().Tcp(40000, 80, kSyn).TruncateTo(14 + 20 + 10).Build(), TC_ACT_SHOT}},
       WEFT_DROP_MALFORMED},
      {"malformed but direction not enforced: passes", true, true, false, {},
       {{kFromPod, Out4().Tcp(40000, 80, kSyn).Ihl(4).Build(), TC_ACT_OK}}, -1},
      {"IPv6 TCP allow and reply", true, true, true, {Pol(kPeerId, 443, T, E, A, 5)},
       {{kFromPod, PacketBuilder().Ipv6(kPod6, kPeer6).Tcp(40000, 443, kSyn).Build(), TC_ACT_OK},
        {kToPod, PacketBuilder().Ipv6(kPeer6, kPod6).Tcp(443, 40000, kSyn | kAck).Build(), TC_ACT_OK}}, -1},
      {"IPv6 TCP deny: RST", true, true, true, {},
       {{kToPod, PacketBuilder().Ipv6(kPeer6, kPod6).Tcp(40000, 443, kSyn).Build(), TC_ACT_REDIRECT}},
       WEFT_DROP_POLICY_DEFAULT},
      {"IPv6 UDP deny", true, true, true, {Pol(kPeerId, 53, U, I, D, 3)},
       {{kToPod, PacketBuilder().Ipv6(kPeer6, kPod6).Udp(40000, 53).Build(), TC_ACT_SHOT}},
       WEFT_DROP_POLICY_DENIED},
      {"UDP allow and reply", true, true, true, {Pol(kPeerId, 53, U, I, A, 4)},
       {{kToPod, In4().Udp(40000, 53).Build(), TC_ACT_OK},
        {kFromPod, Out4().Udp(53, 40000).Build(), TC_ACT_OK}}, -1},
  };
}

class TcPolicyTable : public ::testing::Test {
 protected:
  void SetUp() override {
    WEFT_REQUIRE_KERNEL();
    auto d = PinDir::Create();
    ASSERT_TRUE(d.ok()) << d.status().message();
    pins_ = std::move(*d);
    auto s = LoadTcPolicy(pins_->path());
    ASSERT_TRUE(s.ok()) << s.status().message();
    skel_ = std::move(*s);
  }
  void TearDown() override {
    skel_.reset();
    if (pins_) {
      EXPECT_TRUE(pins_->Remove().ok());
    }
  }

  void Reset(const Row& r) {
    for (bpf_map* m : {skel_->maps.weft_endpoints, skel_->maps.weft_identity, skel_->maps.weft_policy,
                       skel_->maps.weft_ct, skel_->maps.weft_flows})
      ClearMap(m);
    ZeroPercpuArray(skel_->maps.weft_drop_stats);
    ZeroPercpuArray(skel_->maps.weft_ev_stats);
    ASSERT_TRUE(PutIdentity(skel_.get(), kPod, 32, kPodId).ok());
    ASSERT_TRUE(PutIdentity(skel_.get(), kPeer, 32, kPeerId).ok());
    ASSERT_TRUE(PutIdentity(skel_.get(), kPod6, 128, kPodId).ok());
    ASSERT_TRUE(PutIdentity(skel_.get(), kPeer6, 128, kPeerId).ok());
    ASSERT_TRUE(PutIdentity(skel_.get(), "10.0.1.0", 24, kNetId).ok());
    if (r.managed) {
      ASSERT_TRUE(PutEndpoint(skel_.get(), 1, kEp, kPodId, r.enforce_in, r.enforce_eg).ok());
    }
    for (const auto& p : r.policy) ASSERT_TRUE(PutPolicy(skel_.get(), p).ok());
  }

  std::unique_ptr<PinDir> pins_;
  SkelPtr skel_;
};

TEST_F(TcPolicyTable, Rows) {
  for (const Row& r : Rows()) {
    SCOPED_TRACE(r.name);
    Reset(r);
    for (size_t i = 0; i < r.steps.size(); ++i) {
      RunOut o = TestRun(skel_.get(), r.steps[i].prog, r.steps[i].pkt);
      EXPECT_EQ(o.ret, r.steps[i].want) << "step " << i;
    }
    for (uint32_t reason = 0; reason < WEFT_DROP_MAX; ++reason)
      EXPECT_EQ(PercpuArraySum(skel_->maps.weft_drop_stats, reason),
                static_cast<int>(reason) == r.drop_reason ? 1u : 0u)
          << "drop reason " << reason;
  }
}

// The RST a denied SYN turns into: addresses, ports, flags, seq/ack, checksums.
TEST_F(TcPolicyTable, DeniedSynBecomesValidRst) {
  Row r{"rst", true, true, true, {}, {}, 0};
  Reset(r);
  auto syn = In4().Tcp(40001, 22, kSyn, 0x11223344).Payload(12).Build();  // "options"
  RunOut o = TestRun(skel_.get(), kToPod, syn);
  ASSERT_EQ(o.ret, TC_ACT_REDIRECT);
  ASSERT_EQ(o.out.size(), 14u + 20 + 20);
  const uint8_t* ip = &o.out[14];
  const uint8_t* th = &o.out[34];
  EXPECT_EQ(std::memcmp(&o.out[0], &syn[6], 6), 0) << "dst MAC = SYN's source";
  EXPECT_EQ(std::memcmp(&o.out[6], &syn[0], 6), 0) << "src MAC = SYN's destination";
  EXPECT_EQ(std::memcmp(ip + 12, &syn[14 + 16], 4), 0) << "src IP = SYN's dst";
  EXPECT_EQ(std::memcmp(ip + 16, &syn[14 + 12], 4), 0) << "dst IP = SYN's src";
  EXPECT_EQ(Get16(th), 22);
  EXPECT_EQ(Get16(th + 2), 40001);
  EXPECT_EQ(Get32(th + 4), 0u);
  EXPECT_EQ(Get32(th + 8), 0x11223345u);
  EXPECT_EQ(th[13], kRst | kAck);
  EXPECT_EQ(Fold(SumWords(ip, 20)), 0xffff) << "IPv4 header checksum";
  uint32_t ph = SumWords(ip + 12, 8) + IPPROTO_TCP + 20;
  EXPECT_EQ(Fold(SumWords(th, 20, ph)), 0xffff) << "TCP checksum";

  auto syn6 = PacketBuilder().Ipv6(kPeer6, kPod6).Tcp(40002, 22, kSyn, 7).Build();
  o = TestRun(skel_.get(), kFromPod, PacketBuilder().Ipv6(kPod6, kPeer6).Tcp(40002, 22, kSyn, 7).Build());
  ASSERT_EQ(o.ret, TC_ACT_REDIRECT);
  ASSERT_EQ(o.out.size(), 14u + 40 + 20);
  const uint8_t* ip6 = &o.out[14];
  th = &o.out[54];
  EXPECT_EQ(th[13], kRst | kAck);
  EXPECT_EQ(Get32(th + 8), 8u);
  uint32_t ph6 = SumWords(ip6 + 8, 32) + 20 + IPPROTO_TCP;
  EXPECT_EQ(Fold(SumWords(th, 20, ph6)), 0xffff) << "TCP/IPv6 checksum";
  EXPECT_EQ(PercpuArraySum(skel_->maps.weft_drop_stats, WEFT_DROP_POLICY_DEFAULT), 2u);
}

// Both programs load (the verifier accepted them); report their size.
TEST_F(TcPolicyTable, VerifierStats) {
  for (bpf_program* p : {skel_->progs.weft_tc_from_pod, skel_->progs.weft_tc_to_pod}) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len), 0) << strerror(errno);
    EXPECT_GT(info.verified_insns, 0u);
    std::printf("%s: %u instructions, %u verified\n", bpf_program__name(p), info.xlated_prog_len / 8,
                info.verified_insns);
    RecordProperty(std::string(bpf_program__name(p)) + "_verified_insns", info.verified_insns);
  }
}

// Every map with a key/value carries BTF for them (bpftool map dump shows
// field names), and every map is pinned by name under the pin root.
TEST_F(TcPolicyTable, MapsHaveBtfAndPins) {
  bpf_map* m;
  bpf_object__for_each_map(m, skel_->obj) {
    SCOPED_TRACE(bpf_map__name(m));
    bpf_map_info info{};
    __u32 len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(bpf_map__fd(m), &info, &len), 0);
    if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) {
      EXPECT_NE(info.btf_key_type_id, 0u);
      EXPECT_NE(info.btf_value_type_id, 0u);
    }
    EXPECT_EQ(access((pins_->path() + "/" + bpf_map__name(m)).c_str(), F_OK), 0) << "not pinned";
  }
}

// A SYN reusing a tracked tuple is a new connection: counted, and evaluated
// against the current policy; established packets keep passing on the entry.
TEST_F(TcPolicyTable, SynReusingTupleIsEvaluatedAgain) {
  Row r{"reuse", true, false, true, {Pol(kPeerId, 80, IPPROTO_TCP, WEFT_DIR_EGRESS, WEFT_VERDICT_ALLOW, 5)}, {}, 0};
  Reset(r);
  auto syn = Out4().Tcp(40000, 80, kSyn).Build();
  EXPECT_EQ(TestRun(skel_.get(), kFromPod, syn).ret, TC_ACT_OK);
  EXPECT_EQ(TestRun(skel_.get(), kFromPod, syn).ret, TC_ACT_OK);
  EXPECT_EQ(FlowSum(skel_.get(), FlowKey(kPodId, kPeerId, 80, IPPROTO_TCP, WEFT_VERDICT_ALLOW, 0, 5, WEFT_DIR_EGRESS)).connections, 2u);
  ClearMap(skel_->maps.weft_policy);  // the policy changes: default deny now
  EXPECT_EQ(TestRun(skel_.get(), kFromPod, Out4().Tcp(40000, 80, kAck).Build()).ret, TC_ACT_OK);
  EXPECT_EQ(TestRun(skel_.get(), kFromPod, syn).ret, TC_ACT_REDIRECT);
  EXPECT_EQ(PercpuArraySum(skel_->maps.weft_drop_stats, WEFT_DROP_POLICY_DEFAULT), 1u);
}

// Policy revision: a conntrack entry of another revision is evaluated again.
// Still allowed: passes and takes the revision. Denied: the entry becomes a
// tombstone, the packet is dropped (policy reason) and TCP answered with a
// bare RST (seq = the segment's ack_seq); the other direction of the flow is
// cut too; RSTs pass; a new SYN is evaluated afresh.
TEST_F(TcPolicyTable, PolicyRevisionCutsEstablishedFlows) {
  const uint8_t T = IPPROTO_TCP, I = WEFT_DIR_INGRESS;
  Row r{"rev", true, true, false, {Pol(kPeerId, 80, T, I, WEFT_VERDICT_ALLOW, 5)}, {}, 0};
  Reset(r);
  int rev_fd = bpf_map__fd(skel_->maps.weft_policy_rev);
  uint32_t zero = 0, rev = 0;
  ASSERT_EQ(bpf_map_update_elem(rev_fd, &zero, &rev, BPF_ANY), 0);
  auto bump = [&] {
    ++rev;
    ASSERT_EQ(bpf_map_update_elem(rev_fd, &zero, &rev, BPF_ANY), 0);
  };
  auto ct_of = [&]() {
    weft_ct_key k{};
    ParseAbiAddr(kPeer, k.saddr);
    ParseAbiAddr(kPod, k.daddr);
    k.sport = htons(40000), k.dport = htons(80), k.proto = T, k.dir = I;
    weft_ct_val v{};
    EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ct), &k, &v), 0);
    return v;
  };
  struct Step {
    const char* what;
    std::function<void()> before;
    int prog;
    std::vector<uint8_t> pkt;
    int want;
  } steps[] = {
      {"SYN allowed", [] {}, kToPod, In4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK},
      {"reply on the entry", [] {}, kFromPod, Out4().Tcp(80, 40000, kSyn | kAck).Build(), TC_ACT_OK},
      {"new revision, still allowed", bump, kToPod, In4().Tcp(40000, 80, kAck).Build(), TC_ACT_OK},
      {"new revision, now denied: cut with a RST", [&] { bump(); ClearMap(skel_->maps.weft_policy); }, kToPod,
       In4().Tcp(40000, 80, kAck, 77).Build(), TC_ACT_REDIRECT},
      {"tombstone: client again", [] {}, kToPod, In4().Tcp(40000, 80, kAck | kFin).Build(), TC_ACT_REDIRECT},
      {"tombstone: server's reply cut too", [] {}, kFromPod, Out4().Tcp(80, 40000, kAck).Build(), TC_ACT_REDIRECT},
      {"RSTs pass the tombstone", [] {}, kFromPod, Out4().Tcp(80, 40000, kRst).Build(), TC_ACT_OK},
      {"allowed again: a new SYN opens", [&] {
         ASSERT_TRUE(PutPolicy(skel_.get(), Pol(kPeerId, 80, T, I, WEFT_VERDICT_ALLOW, 6)).ok());
         bump();
       }, kToPod, In4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK},
  };
  for (auto& s : steps) {
    SCOPED_TRACE(s.what);
    s.before();
    RunOut o = TestRun(skel_.get(), s.prog, s.pkt);
    EXPECT_EQ(o.ret, s.want);
    if (std::string(s.what) == "new revision, still allowed") {
      EXPECT_EQ(ct_of().policy_rev, rev);
      EXPECT_EQ(ct_of().verdict, WEFT_VERDICT_ALLOW);
    }
    if (std::string(s.what).rfind("new revision, now denied", 0) == 0) {
      EXPECT_EQ(ct_of().verdict, WEFT_VERDICT_DENY);
      ASSERT_GE(o.out.size(), 14u + 20 + 20);
      const uint8_t* th = &o.out[34];
      EXPECT_EQ(th[13], kRst) << "bare RST";
      EXPECT_EQ(Get16(th), 80);
      EXPECT_EQ(Get16(th + 2), 40000);
    }
  }
  EXPECT_EQ(ct_of().verdict, WEFT_VERDICT_ALLOW);
  EXPECT_EQ(PercpuArraySum(skel_->maps.weft_drop_stats, WEFT_DROP_POLICY_DEFAULT), 3u);
}

// A TCP connection gives its conntrack entry back with its last ACK: once a
// FIN went each way, the next ACK (no SYN/FIN) deletes it; one FIN, a half
// close's data or a RST keep it. A stray segment afterwards is a flow again
// (allowed, a new entry) but not another connection.
TEST_F(TcPolicyTable, ClosedConnectionGivesItsEntryBack) {
  const uint8_t T = IPPROTO_TCP, I = WEFT_DIR_INGRESS;
  Row r{"close", true, true, false, {Pol(kPeerId, 80, T, I, WEFT_VERDICT_ALLOW, 5)}, {}, 0};
  Reset(r);
  auto has_entry = [&](uint16_t sport) {
    weft_ct_key k{};
    ParseAbiAddr(kPeer, k.saddr);
    ParseAbiAddr(kPod, k.daddr);
    k.sport = htons(sport), k.dport = htons(80), k.proto = T, k.dir = I;
    weft_ct_val v{};
    return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ct), &k, &v) == 0;
  };
  struct Step {
    const char* what;
    int prog;
    std::vector<uint8_t> pkt;
    uint16_t sport;  // the client port whose entry is checked
    bool entry_after;
  } steps[] = {
      {"SYN", kToPod, In4().Tcp(40000, 80, kSyn).Build(), 40000, true},
      {"SYN-ACK", kFromPod, Out4().Tcp(80, 40000, kSyn | kAck).Build(), 40000, true},
      {"ACK", kToPod, In4().Tcp(40000, 80, kAck).Build(), 40000, true},
      {"client FIN", kToPod, In4().Tcp(40000, 80, kAck | kFin).Build(), 40000, true},
      {"server data after the half close", kFromPod, Out4().Tcp(80, 40000, kAck).Payload(100).Build(), 40000, true},
      {"client ACK: one FIN so far", kToPod, In4().Tcp(40000, 80, kAck).Build(), 40000, true},
      {"server FIN", kFromPod, Out4().Tcp(80, 40000, kAck | kFin).Build(), 40000, true},
      {"client's last ACK", kToPod, In4().Tcp(40000, 80, kAck).Build(), 40000, false},
      {"a stray ACK: a flow again", kToPod, In4().Tcp(40000, 80, kAck).Build(), 40000, true},
      // The server closes first this time, on another port; a RST keeps it.
      {"SYN 2", kToPod, In4().Tcp(40001, 80, kSyn).Build(), 40001, true},
      {"server FIN 2", kFromPod, Out4().Tcp(80, 40001, kAck | kFin).Build(), 40001, true},
      {"RST 2 passes, keeps the entry", kToPod, In4().Tcp(40001, 80, kRst).Build(), 40001, true},
      {"client FIN 2", kToPod, In4().Tcp(40001, 80, kAck | kFin).Build(), 40001, true},
      {"server's last ACK", kFromPod, Out4().Tcp(80, 40001, kAck).Build(), 40001, false},
  };
  for (auto& st : steps) {
    SCOPED_TRACE(st.what);
    EXPECT_EQ(TestRun(skel_.get(), st.prog, st.pkt).ret, TC_ACT_OK);
    EXPECT_EQ(has_entry(st.sport), st.entry_after) << "port " << st.sport;
  }
  // Two connections opened (two SYNs), every segment counted.
  const weft_flow_val f = FlowSum(skel_.get(), FlowKey(kPeerId, kPodId, 80, T, WEFT_VERDICT_ALLOW, 0, 5, I));
  EXPECT_EQ(f.connections, 2u);
  EXPECT_EQ(f.packets, 13u) << "all but the RST";
}

// Trace mode over conntrack: an established flow is reported from CT; with a
// stale revision the policy is evaluated again and reported, and neither
// changes the entry (no refresh, no revision update, no tombstone).
TEST_F(TcPolicyTable, TraceModeOverConntrackHasNoSideEffects) {
  const uint8_t T = IPPROTO_TCP, I = WEFT_DIR_INGRESS;
  Row r{"trace", true, true, false, {Pol(kPeerId, 80, T, I, WEFT_VERDICT_ALLOW, 5)}, {}, 0};
  Reset(r);
  ASSERT_EQ(TestRun(skel_.get(), kToPod, In4().Tcp(40000, 80, kSyn).Build()).ret, TC_ACT_OK);
  weft_ct_key k{};
  ParseAbiAddr(kPeer, k.saddr);
  ParseAbiAddr(kPod, k.daddr);
  k.sport = htons(40000), k.dport = htons(80), k.proto = T, k.dir = I;
  auto entry = [&] {
    weft_ct_val v{};
    EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ct), &k, &v), 0);
    return v;
  };
  auto trace = [&](int prog, const std::vector<uint8_t>& pkt, uint32_t* cb) {
    __sk_buff ctx{}, out{};
    ctx.ifindex = 1;
    ctx.mark = WEFT_TRACE_MARK;
    ctx.cb[WEFT_TRACE_CB_MAGIC] = WEFT_TRACE_MAGIC;
    std::vector<uint8_t> data(pkt.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_out = data.data(),
                .data_size_in = static_cast<__u32>(pkt.size()), .data_size_out = static_cast<__u32>(data.size()),
                .ctx_in = &ctx, .ctx_out = &out, .ctx_size_in = sizeof(ctx), .ctx_size_out = sizeof(out),
                .repeat = 1);
    bpf_program* p = prog == kFromPod ? skel_->progs.weft_tc_from_pod : skel_->progs.weft_tc_to_pod;
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(p), &o), 0);
    std::memcpy(cb, out.cb, sizeof(out.cb));
    return static_cast<int>(o.retval);
  };
  const weft_ct_val before = entry();
  uint32_t cb[5];
  struct Case {
    const char* what;
    std::function<void()> setup;
    int prog;
    std::vector<uint8_t> pkt;
    int ret;
    uint32_t verdict, reason, stage, policy;
  } cases[] = {
      {"established, forward", [] {}, kToPod, In4().Tcp(40000, 80, kAck).Build(), TC_ACT_OK, WEFT_VERDICT_ALLOW, 0,
       WEFT_TRACE_STAGE_CT, 5},
      {"established, reply", [] {}, kFromPod, Out4().Tcp(80, 40000, kAck).Build(), TC_ACT_OK, WEFT_VERDICT_ALLOW,
       0, WEFT_TRACE_STAGE_CT, 5},
      {"stale revision, still allowed",
       [&] {
         uint32_t zero = 0, rev = 9;
         ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_policy_rev), &zero, &rev, BPF_ANY), 0);
       },
       kToPod, In4().Tcp(40000, 80, kAck).Build(), TC_ACT_OK, WEFT_VERDICT_ALLOW, 0, WEFT_TRACE_STAGE_CT, 5},
      {"stale revision, now denied", [&] { ClearMap(skel_->maps.weft_policy); }, kToPod,
       In4().Tcp(40000, 80, kAck).Build(), TC_ACT_SHOT, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DEFAULT,
       WEFT_TRACE_STAGE_POLICY, 0},
      {"new SYN, denied (no RST in trace)", [] {}, kToPod, In4().Tcp(40001, 80, kSyn).Build(), TC_ACT_SHOT,
       WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DEFAULT, WEFT_TRACE_STAGE_POLICY, 0},
      {"not L4", [] {}, kToPod, In4().Proto(IPPROTO_ICMP).Build(), TC_ACT_OK, WEFT_VERDICT_ALLOW, 0,
       WEFT_TRACE_STAGE_NOT_L4, 0},
      {"malformed", [] {}, kToPod, In4().Tcp(40000, 80, kSyn).Ihl(4).Build(), TC_ACT_SHOT, WEFT_VERDICT_DENY,
       WEFT_DROP_MALFORMED, WEFT_TRACE_STAGE_MALFORMED, 0},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    c.setup();
    EXPECT_EQ(trace(c.prog, c.pkt, cb), c.ret);
    EXPECT_EQ(cb[WEFT_TRACE_CB_MAGIC], 0u);
    EXPECT_EQ(cb[WEFT_TRACE_CB_RESULT] & 0xff, c.verdict);
    EXPECT_EQ((cb[WEFT_TRACE_CB_RESULT] >> 8) & 0xff, c.reason);
    EXPECT_EQ((cb[WEFT_TRACE_CB_RESULT] >> 16) & 0xff, c.stage);
    EXPECT_EQ(cb[WEFT_TRACE_CB_POLICY], c.policy);
    if (c.stage != WEFT_TRACE_STAGE_NOT_L4 && c.stage != WEFT_TRACE_STAGE_MALFORMED) {
      EXPECT_EQ(cb[WEFT_TRACE_CB_PEER], kPeerId);
    }
    EXPECT_EQ(cb[WEFT_TRACE_CB_EP], kEp);
    const weft_ct_val now = entry();
    EXPECT_EQ(std::memcmp(&now, &before, sizeof(now)), 0) << "trace changed the conntrack entry";
  }
  for (uint32_t reason = 0; reason < WEFT_DROP_MAX; ++reason)
    EXPECT_EQ(PercpuArraySum(skel_->maps.weft_drop_stats, reason), 0u) << "reason " << reason;
  EXPECT_EQ(PercpuArraySum(skel_->maps.weft_ev_stats, WEFT_EVSTAT_SENT), 1u) << "only the real SYN";
  EXPECT_EQ(FlowSum(skel_.get(), FlowKey(kPeerId, kPodId, 80, T, WEFT_VERDICT_ALLOW, 0, 5, WEFT_DIR_INGRESS)).packets, 1u);
}

int CountEvent(void* ctx, void* data, size_t len) {
  auto* v = static_cast<std::vector<weft_flow_event>*>(ctx);
  if (len >= sizeof(weft_flow_event)) v->push_back(*static_cast<weft_flow_event*>(data));
  return 0;
}

TEST_F(TcPolicyTable, FlowAggregatesAndEvents) {
  const uint8_t T = IPPROTO_TCP, U = IPPROTO_UDP;
  Row r{"flows", true, true, true,
        {Pol(kPeerId, 80, T, WEFT_DIR_EGRESS, WEFT_VERDICT_ALLOW, 5),
         Pol(kPeerId, 53, U, WEFT_DIR_INGRESS, WEFT_VERDICT_DENY, 9)},
        {}, 0};
  Reset(r);
  std::vector<weft_flow_event> evs;
  ring_buffer* rb = ring_buffer__new(bpf_map__fd(skel_->maps.weft_flow_ev), CountEvent, &evs, nullptr);
  ASSERT_TRUE(rb);
  ring_buffer__consume(rb);
  evs.clear();

  uint64_t bytes = 0;
  auto run = [&](int prog, const std::vector<uint8_t>& p, int want) {
    EXPECT_EQ(TestRun(skel_.get(), prog, p).ret, want);
    bytes += p.size();
  };
  // One allowed connection, 3 packets out, 2 back: one aggregate, one event.
  run(kFromPod, Out4().Tcp(40000, 80, kSyn).Build(), TC_ACT_OK);
  run(kToPod, In4().Tcp(80, 40000, kSyn | kAck).Build(), TC_ACT_OK);
  run(kFromPod, Out4().Tcp(40000, 80, kAck).Payload(100).Build(), TC_ACT_OK);
  run(kToPod, In4().Tcp(80, 40000, kAck).Payload(1000).Build(), TC_ACT_OK);
  run(kFromPod, Out4().Tcp(40000, 80, kAck | kFin).Build(), TC_ACT_OK);
  // A second connection from another port.
  run(kFromPod, Out4().Tcp(40002, 80, kSyn).Build(), TC_ACT_OK);
  auto allowed = FlowSum(skel_.get(), FlowKey(kPodId, kPeerId, 80, T, WEFT_VERDICT_ALLOW, 0, 5, WEFT_DIR_EGRESS));
  EXPECT_EQ(allowed.connections, 2u);
  EXPECT_EQ(allowed.packets, 6u);
  EXPECT_EQ(allowed.bytes, bytes);

  // Two denied datagrams in: both counted, both evented.
  run(kToPod, In4().Udp(5000, 53).Payload(20).Build(), TC_ACT_SHOT);
  run(kToPod, In4().Udp(5001, 53).Payload(20).Build(), TC_ACT_SHOT);
  auto denied = FlowSum(skel_.get(),
                        FlowKey(kPeerId, kPodId, 53, U, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DENIED, 9, WEFT_DIR_INGRESS));
  EXPECT_EQ(denied.connections, 2u);
  EXPECT_EQ(denied.packets, 2u);
  EXPECT_EQ(denied.bytes, 2u * (14 + 20 + 8 + 20));

  EXPECT_EQ(PercpuArraySum(skel_->maps.weft_ev_stats, WEFT_EVSTAT_SENT), 4u);
  EXPECT_EQ(PercpuArraySum(skel_->maps.weft_ev_stats, WEFT_EVSTAT_LOST), 0u);
  ring_buffer__consume(rb);
  ASSERT_EQ(evs.size(), 4u);
  EXPECT_EQ(evs[0].src_identity, kPodId);
  EXPECT_EQ(evs[0].dst_identity, kPeerId);
  EXPECT_EQ(ntohs(evs[0].dport), 80);
  EXPECT_EQ(evs[0].verdict, WEFT_VERDICT_ALLOW);
  EXPECT_EQ(evs[0].direction, WEFT_DIR_EGRESS);
  EXPECT_EQ(evs[0].policy_id, 5u);
  EXPECT_EQ(evs[3].verdict, WEFT_VERDICT_DENY);
  EXPECT_EQ(evs[3].reason, WEFT_DROP_POLICY_DENIED);
  EXPECT_EQ(evs[3].direction, WEFT_DIR_INGRESS);
  EXPECT_EQ(evs[3].src_identity, kPeerId);
  uint8_t peer[16];
  ParseAbiAddr(kPeer, peer);
  EXPECT_EQ(std::memcmp(evs[3].saddr, peer, 16), 0);
  ring_buffer__free(rb);
}

// ---- real traffic -----------------------------------------------------------------

// A clsact hook + filter on an interface of a netns we created; removes the
// filter, and the hook only if we created it.
class TcAttachment {
 public:
  static Result<std::unique_ptr<TcAttachment>> Attach(const std::string& ns, const std::string& dev,
                                                      bpf_tc_attach_point point, int prog_fd) {
    InNetns in(ns);
    if (!in.ok()) return Status::Errno("enter " + ns, errno);
    std::unique_ptr<TcAttachment> a(new TcAttachment());
    a->ns_ = ns;
    a->ifindex_ = if_nametoindex(dev.c_str());
    if (!a->ifindex_) return Status::Errno("ifindex of " + dev + " in " + ns, errno);
    a->hook_.sz = sizeof(a->hook_);
    a->hook_.ifindex = a->ifindex_;
    a->hook_.attach_point = point;
    // An existing clsact is fine (and not ours): keep libbpf from logging it.
    libbpf_print_fn_t prev = libbpf_set_print(nullptr);
    int err = bpf_tc_hook_create(&a->hook_);
    libbpf_set_print(prev);
    if (err != 0 && err != -EEXIST) return Status::Errno("create clsact on " + dev, -err);
    a->created_hook_ = err == 0;
    a->opts_.sz = sizeof(a->opts_);
    a->opts_.prog_fd = prog_fd;
    a->opts_.handle = 1;
    a->opts_.priority = 1;
    err = bpf_tc_attach(&a->hook_, &a->opts_);
    if (err != 0) return Status::Errno("attach tc program to " + dev, -err);
    a->attached_ = true;
    return a;
  }
  ~TcAttachment() {
    InNetns in(ns_);
    if (!in.ok()) return;  // the netns is gone, and the filter with it
    if (attached_) {
      bpf_tc_opts o{};
      o.sz = sizeof(o);
      o.handle = opts_.handle;
      o.priority = opts_.priority;
      bpf_tc_detach(&hook_, &o);
    }
    if (created_hook_) {
      hook_.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook_);
    }
  }
  uint32_t ifindex() const { return ifindex_; }

 private:
  TcAttachment() = default;
  std::string ns_;
  uint32_t ifindex_ = 0;
  bpf_tc_hook hook_{};
  bpf_tc_opts opts_{};
  bool created_hook_ = false, attached_ = false;
};

int SocketIn(const std::string& ns, int type) {
  InNetns in(ns);
  if (!in.ok()) return -errno;
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

// Connect from netns `ns`; 0 on success or the positive errno.
int ConnectFrom(const std::string& ns, const std::string& ip, uint16_t port, int timeout_ms,
                bool rst_close = true) {
  int fd = SocketIn(ns, SOCK_STREAM);
  if (fd < 0) return -fd;
  UniqueFd s(fd);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  SockAddr a = MakeSockAddr(ip, port);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0 ? 0 : errno;
  if (rc == 0 && rst_close) CloseRst(s.release());
  return rc;
}

class TcPolicyTraffic : public ::testing::Test {
 protected:
  void SetUp() override {
    WEFT_REQUIRE_KERNEL();
    auto t = MakeTwoPodNode();
    ASSERT_TRUE(t.ok()) << t.status().message();
    node_ = std::move(t->node), p1_ = std::move(t->p1), p2_ = std::move(t->p2);

    auto d = PinDir::Create();
    ASSERT_TRUE(d.ok()) << d.status().message();
    pins_ = std::move(*d);
    auto s = LoadTcPolicy(pins_->path());
    ASSERT_TRUE(s.ok()) << s.status().message();
    skel_ = std::move(*s);
    int from = bpf_program__fd(skel_->progs.weft_tc_from_pod);
    int to = bpf_program__fd(skel_->progs.weft_tc_to_pod);
    for (auto [dev, point, fd] : {std::tuple{"h1", BPF_TC_INGRESS, from}, std::tuple{"h1", BPF_TC_EGRESS, to},
                                  std::tuple{"h2", BPF_TC_INGRESS, from}, std::tuple{"h2", BPF_TC_EGRESS, to}}) {
      auto a = TcAttachment::Attach(node_->path(), dev, point, fd);
      ASSERT_TRUE(a.ok()) << a.status().message();
      tc_.push_back(std::move(*a));
    }
    h1_ = tc_[0]->ifindex();
    h2_ = tc_[2]->ifindex();
  }
  void TearDown() override {
    while (!tc_.empty()) tc_.pop_back();  // reverse: the hook's creator goes last
    skel_.reset();
    if (pins_) {
      EXPECT_TRUE(pins_->Remove().ok());
    }
    for (auto* ns : {&p1_, &p2_, &node_})
      if (*ns) {
        EXPECT_TRUE((*ns)->Remove().ok());
      }
  }

  std::unique_ptr<Netns> node_, p1_, p2_;
  std::unique_ptr<PinDir> pins_;
  SkelPtr skel_;
  std::vector<std::unique_ptr<TcAttachment>> tc_;
  uint32_t h1_ = 0, h2_ = 0;
};

TEST_F(TcPolicyTraffic, AllowDenyRefuseAndCount) {
  tc_policy* s = skel_.get();
  const uint8_t T = IPPROTO_TCP, U = IPPROTO_UDP, E = WEFT_DIR_EGRESS, I = WEFT_DIR_INGRESS;
  const uint8_t A = WEFT_VERDICT_ALLOW, D = WEFT_VERDICT_DENY;
  constexpr uint32_t kP1 = 2001, kP2 = 2002;
  ASSERT_TRUE(PutIdentity(s, "10.77.1.2", 32, kP1).ok());
  ASSERT_TRUE(PutIdentity(s, "10.77.2.2", 32, kP2).ok());
  ASSERT_TRUE(PutEndpoint(s, h1_, 1, kP1, /*in=*/false, /*eg=*/true).ok());
  ASSERT_TRUE(PutEndpoint(s, h2_, 2, kP2, /*in=*/true, /*eg=*/false).ok());
  // P1 egress: anything to P2 except TCP 9090.
  ASSERT_TRUE(PutPolicy(s, {1, kP2, 0, T, E, A, 11}).ok());
  ASSERT_TRUE(PutPolicy(s, {1, kP2, 9090, T, E, D, 12}).ok());
  ASSERT_TRUE(PutPolicy(s, {1, kP2, 0, U, E, A, 13}).ok());
  // P2 ingress: TCP 8080 and UDP 5300 from P1; the rest default-denied.
  ASSERT_TRUE(PutPolicy(s, {2, kP1, 8080, T, I, A, 21}).ok());
  ASSERT_TRUE(PutPolicy(s, {2, kP1, 5300, U, I, A, 22}).ok());

  // Listeners in P2.
  std::vector<UniqueFd> listeners;
  for (uint16_t port : {8080, 8081, 9090}) {
    int fd = SocketIn(p2_->path(), SOCK_STREAM);
    ASSERT_GE(fd, 0);
    UniqueFd l(fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    SockAddr a = MakeSockAddr("10.77.2.2", port);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len), 0) << strerror(errno);
    ASSERT_EQ(listen(fd, 1024), 0);
    listeners.push_back(std::move(l));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  std::thread acceptor([&] {
    while (!stop) {
      pollfd p{listeners[0].get(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(listeners[0].get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        close(c);
        ++accepted;
      }
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      t.join();
    }
  } join{stop, acceptor};

  // Allowed TCP, replies flow (the handshake completes through both programs).
  EXPECT_EQ(ConnectFrom(p1_->path(), "10.77.2.2", 8080, 2000), 0);

  // Denied at P2's ingress (default deny) and at P1's egress (explicit deny):
  // refused fast by our RST, not a 2 s timeout.
  for (uint16_t port : {8081, 9090}) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = ConnectFrom(p1_->path(), "10.77.2.2", port, 2000);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(rc == ECONNREFUSED || rc == ECONNRESET) << "port " << port << ": " << strerror(rc);
    EXPECT_LT(ms, 1500) << "port " << port << " took " << ms << " ms";
  }
  EXPECT_EQ(PercpuArraySum(s->maps.weft_drop_stats, WEFT_DROP_POLICY_DEFAULT), 1u);
  EXPECT_EQ(PercpuArraySum(s->maps.weft_drop_stats, WEFT_DROP_POLICY_DENIED), 1u);

  // UDP: allowed datagram arrives, denied one does not.
  int ufd = SocketIn(p2_->path(), SOCK_DGRAM), u2fd = SocketIn(p2_->path(), SOCK_DGRAM);
  int cfd = SocketIn(p1_->path(), SOCK_DGRAM);
  ASSERT_GE(ufd, 0);
  ASSERT_GE(u2fd, 0);
  ASSERT_GE(cfd, 0);
  UniqueFd us(ufd), us2(u2fd), cs(cfd);
  SockAddr ok_addr = MakeSockAddr("10.77.2.2", 5300), bad_addr = MakeSockAddr("10.77.2.2", 5301);
  ASSERT_EQ(bind(ufd, reinterpret_cast<sockaddr*>(&ok_addr.ss), ok_addr.len), 0);
  ASSERT_EQ(bind(u2fd, reinterpret_cast<sockaddr*>(&bad_addr.ss), bad_addr.len), 0);
  ASSERT_EQ(sendto(cfd, "ok", 2, 0, reinterpret_cast<sockaddr*>(&ok_addr.ss), ok_addr.len), 2);
  ASSERT_EQ(sendto(cfd, "no", 2, 0, reinterpret_cast<sockaddr*>(&bad_addr.ss), bad_addr.len), 2);
  pollfd pu[2] = {{ufd, POLLIN, 0}, {u2fd, POLLIN, 0}};
  poll(pu, 2, 500);
  EXPECT_TRUE(pu[0].revents & POLLIN) << "allowed datagram did not arrive";
  EXPECT_FALSE(pu[1].revents & POLLIN) << "denied datagram arrived";
  EXPECT_EQ(PercpuArraySum(s->maps.weft_drop_stats, WEFT_DROP_POLICY_DEFAULT), 2u);

  // 1,000 connections: exactly 1,000 more in the aggregate at both ends.
  auto in_key = FlowKey(kP1, kP2, 8080, T, A, 0, 21, WEFT_DIR_INGRESS);
  auto eg_key = FlowKey(kP1, kP2, 8080, T, A, 0, 11, WEFT_DIR_EGRESS);
  uint64_t in0 = FlowSum(s, in_key).connections, eg0 = FlowSum(s, eg_key).connections;
  EXPECT_EQ(in0, 1u);
  EXPECT_EQ(eg0, 1u);
  int failures = 0;
  for (int i = 0; i < 1000; ++i)
    if (ConnectFrom(p1_->path(), "10.77.2.2", 8080, 2000) != 0) ++failures;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(FlowSum(s, in_key).connections, in0 + 1000);
  EXPECT_EQ(FlowSum(s, eg_key).connections, eg0 + 1000);
  EXPECT_EQ(PercpuArraySum(s->maps.weft_ev_stats, WEFT_EVSTAT_LOST), 0u);
}

}  // namespace
}  // namespace weft::ktest
