// The policy path without a kernel (agent/policy/: placement, the reconciler,
// the applier) through FakePolicyWriter. The property of the apply order
// (policy/reconcile.hpp): after every single write, no new flow that both the
// old and the new config allow is denied; and a write that fails part-way
// leaves maps that applying the old state again brings back exactly. Driven
// by a table of transitions and a randomized sequence. Label `unit`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <netinet/in.h>

#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agent/policy/apply.hpp"
#include "agent/policy/desired.hpp"
#include "agent/policy/placement.hpp"
#include "tests/unit/fake_policy_writer.hpp"

namespace weft::policy {
namespace {

using testing::FakePolicyWriter;

// The applier logs every apply at info: thousands here.
const bool kQuiet = [] {
  spdlog::set_level(spdlog::level::warn);
  return true;
}();

// ---- the node: pods behind veths, and the rest of the mesh ----

constexpr int kPods = 4;  // pod i: 10.0.0.<i+1> behind veth ifindex 10+i
IpAddr PodAddr(int i) { return *IpAddr::Parse("10.0.0." + std::to_string(i + 1)); }
const std::vector<IpAddr> kRemote = {*IpAddr::Parse("10.1.0.1"), *IpAddr::Parse("10.1.0.2"),
                                     *IpAddr::Parse("10.2.0.9")};

Result<Interface> Route(const IpAddr& a) {
  for (int i = 0; i < kPods; ++i)
    if (a == PodAddr(i)) return Interface{static_cast<uint32_t>(10 + i), "h" + std::to_string(i), "veth"};
  return Status::Error("no route to " + a.ToString(), ENETUNREACH);
}

std::string Bytes(const IpAddr& a) {
  uint32_t v4 = a.v4_be();
  return std::string(reinterpret_cast<const char*>(&v4), 4);
}

// ---- what bpf/tc_policy.bpf.c decides for a new flow (a SYN) ----

uint32_t IdentityOf(const KernelPolicy& m, const IpAddr& a) {
  const weft_ipcache_val* best = nullptr;
  uint32_t best_len = 0;
  for (const auto& [k, v] : m.identity) {
    bool match = true;
    for (uint32_t bit = 0; bit < k.prefixlen && match; ++bit)
      match = ((k.addr[bit / 8] ^ a.bytes()[bit / 8]) & (0x80u >> (bit % 8))) == 0;
    if (match && (!best || k.prefixlen >= best_len)) best = &v, best_len = k.prefixlen;
  }
  return best ? best->identity : static_cast<uint32_t>(WEFT_IDENTITY_UNKNOWN);
}

// The documented lookup order; a miss denies (the endpoint enforces).
bool PolicyAllows(const KernelPolicy& m, uint32_t ep_id, uint32_t peer, uint16_t port, uint8_t dir) {
  for (auto [p, q] : {std::pair<uint32_t, uint16_t>{peer, port}, {peer, 0}, {WEFT_IDENTITY_ANY, port},
                      {WEFT_IDENTITY_ANY, 0}}) {
    weft_policy_key k{};
    k.ep_id = ep_id;
    k.peer_identity = p;
    k.port = q;
    k.proto = IPPROTO_TCP;
    k.direction = dir;
    if (auto it = m.policy.find(k); it != m.policy.end())
      return it->second.verdict == WEFT_VERDICT_ALLOW || it->second.verdict == WEFT_VERDICT_STEER;
  }
  return false;
}

struct Flow {
  IpAddr src, dst;
  uint16_t port;
  std::string ToString() const { return src.ToString() + " -> " + dst.ToString() + ":" + std::to_string(port); }
};

std::optional<uint32_t> LocalIf(const IpAddr& a) {
  auto r = Route(a);
  return r.ok() ? std::optional<uint32_t>(r->ifindex) : std::nullopt;
}

bool Allowed(const KernelPolicy& m, const std::map<uint32_t, bool>& links, const Flow& f) {
  // Leaving the client's pod: weft_tc_from_pod, on every endpoint with links.
  if (auto ifx = LocalIf(f.src); ifx && links.count(*ifx)) {
    if (auto ep = m.endpoints.find(*ifx); ep != m.endpoints.end()) {
      const weft_endpoint& e = ep->second;
      bool own = e.n_addrs == 0;
      for (uint8_t i = 0; i < e.n_addrs; ++i) own |= IpAddr::FromBytes(e.addrs[i]) == f.src;
      if (!own) return false;  // forged_source
      if (e.enforce_egress && !PolicyAllows(m, e.ep_id, IdentityOf(m, f.dst), f.port, WEFT_DIR_EGRESS))
        return false;
    }
  }
  // Entering the server's pod: weft_tc_to_pod, where attached.
  if (auto ifx = LocalIf(f.dst); ifx) {
    auto l = links.find(*ifx);
    if (l != links.end() && l->second)
      if (auto ep = m.endpoints.find(*ifx); ep != m.endpoints.end() && ep->second.enforce_ingress)
        if (!PolicyAllows(m, ep->second.ep_id, IdentityOf(m, f.src), f.port, WEFT_DIR_INGRESS)) return false;
  }
  return true;
}

std::vector<Flow> AllFlows() {
  std::vector<IpAddr> addrs = kRemote;
  for (int i = 0; i < kPods; ++i) addrs.push_back(PodAddr(i));
  std::vector<Flow> out;
  for (const auto& s : addrs)
    for (const auto& d : addrs)
      if (s != d && (LocalIf(s) || LocalIf(d)))
        for (uint16_t port : {80, 8080, 9090}) out.push_back({s, d, port});
  return out;
}

// ---- configs ----

struct Entry {
  uint32_t peer, port;
  v1::Direction dir;
  v1::Verdict verdict;
  uint32_t policy_id;
};
struct Pod {
  int index;
  uint32_t identity;
  bool ingress = false, egress = false;
  std::vector<Entry> entries;
  std::string name;  // default "w<index>" (namespace "ns")
};
struct Config {
  std::vector<Pod> pods;
  std::vector<std::tuple<std::string, uint32_t, uint32_t>> cache;  // prefix, length, identity (pods' own added)
};

v1::NodeConfig ToProto(const Config& c) {
  v1::NodeConfig n;
  for (const auto& p : c.pods) {
    auto* w = n.add_local_workloads();
    w->set_namespace_("ns");
    w->set_name(p.name.empty() ? "w" + std::to_string(p.index) : p.name);
    w->add_addresses(Bytes(PodAddr(p.index)));
    w->set_identity(p.identity);
    w->set_enforce_ingress(p.ingress);
    w->set_enforce_egress(p.egress);
    for (const auto& e : p.entries) {
      auto* pe = w->add_policy();
      pe->set_peer_identity(e.peer);
      pe->set_port(e.port);
      pe->set_protocol(v1::TCP);
      pe->set_direction(e.dir);
      pe->set_verdict(e.verdict);
      pe->set_policy_id(e.policy_id);
    }
    auto* ic = n.add_identity_cache();
    ic->set_prefix(Bytes(PodAddr(p.index)));
    ic->set_prefix_len(32);
    ic->set_identity(p.identity);
  }
  for (const auto& [prefix, len, id] : c.cache) {
    auto* ic = n.add_identity_cache();
    ic->set_prefix(Bytes(*IpAddr::Parse(prefix)));
    ic->set_prefix_len(len);
    ic->set_identity(id);
  }
  return n;
}

PolicyDesired Desired(const Config& c) {
  auto d = PolicyState::Convert(ToProto(c));
  EXPECT_TRUE(d.ok()) << d.status().message();
  return d.ok() ? *d : PolicyDesired{};
}

// A node whose maps hold `c` (applied through the applier from empty).
struct Node {
  FakePolicyWriter fake;
  PolicyApplier applier{fake, fake, Route, NamesFile("", "")};
};
void Start(Node& n, const Config& c) {
  Status st = n.applier.Apply(Desired(c), PolicyChange{}, 1);
  ASSERT_TRUE(st.ok()) << st.message();
}

// Applies old, then new with the check after every single write; then the
// maps must be what new alone gives. Returns the number of writes.
size_t CheckTransition(const Config& old_c, const Config& new_c) {
  Node ref_old, ref_new, n;
  Start(ref_old, old_c);
  Start(ref_new, new_c);
  Start(n, old_c);
  // Flows both configs allow, whose peers keep their identity (the known limit).
  std::vector<Flow> both;
  for (const auto& f : AllFlows())
    if (Allowed(ref_old.fake.state, ref_old.fake.links, f) && Allowed(ref_new.fake.state, ref_new.fake.links, f) &&
        IdentityOf(ref_old.fake.state, f.src) == IdentityOf(ref_new.fake.state, f.src) &&
        IdentityOf(ref_old.fake.state, f.dst) == IdentityOf(ref_new.fake.state, f.dst))
      both.push_back(f);
  const size_t before = n.fake.writes;
  n.fake.after_write = [&] {
    for (const auto& f : both)
      if (!Allowed(n.fake.state, n.fake.links, f)) {
        ADD_FAILURE() << "after write " << n.fake.writes - before << " (" << n.fake.log.back() << "): " << f.ToString()
                      << " is denied, which both configs allow";
        n.fake.after_write = nullptr;  // one report per transition
        return;
      }
  };
  Status st = n.applier.Apply(Desired(new_c), PolicyChange{}, 2);
  EXPECT_TRUE(st.ok()) << st.message();
  n.fake.after_write = nullptr;
  // The same maps and links as the new config applied alone; ep ids may differ.
  EXPECT_EQ(n.fake.state.endpoints.size(), ref_new.fake.state.endpoints.size());
  EXPECT_EQ(n.fake.state.policy.size(), ref_new.fake.state.policy.size());
  EXPECT_EQ(n.fake.state.identity.size(), ref_new.fake.state.identity.size());
  EXPECT_EQ(n.fake.links, ref_new.fake.links);
  for (const auto& f : AllFlows())
    EXPECT_EQ(Allowed(n.fake.state, n.fake.links, f), Allowed(ref_new.fake.state, ref_new.fake.links, f))
        << f.ToString();
  // Exactly what ToKernel gives for the placement it made.
  std::map<std::string, Placement> placement;
  for (const auto& e : n.applier.endpoints())
    placement[e.workload] = Placement{e.ifindex, e.ep_id, {}};
  KernelPolicy want = ToKernel(Desired(new_c), placement);
  for (const auto& [k, v] : want.policy) EXPECT_TRUE(n.fake.state.policy.count(k));
  EXPECT_EQ(n.fake.revision, ref_old.fake.revision + (n.fake.writes - before > 0 ? 1u : 0u))
      << "the revision moves once per apply that wrote something";
  return n.fake.writes - before;
}

// Fails each single write of old -> new in turn: the apply stops with the
// error, and applying old again (the agent's rollback) restores old's maps
// and links exactly.
void CheckRollbacks(const Config& old_c, const Config& new_c, size_t writes) {
  Node ref;
  Start(ref, old_c);
  for (size_t k = 1; k <= writes; ++k) {
    SCOPED_TRACE("failing write " + std::to_string(k));
    Node n;
    Start(n, old_c);
    n.fake.FailWrite(k);
    Status st = n.applier.Apply(Desired(new_c), PolicyChange{}, 2);
    ASSERT_FALSE(st.ok()) << "write " << k << " of " << writes << " was not made";
    EXPECT_NE(st.message().find("fake"), std::string::npos) << st.message();
    st = n.applier.Apply(Desired(old_c), PolicyChange{}, 1);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(n.fake.state.policy.size(), ref.fake.state.policy.size());
    for (const auto& [key, v] : ref.fake.state.policy) {
      auto it = n.fake.state.policy.find(key);
      ASSERT_NE(it, n.fake.state.policy.end());
      EXPECT_TRUE(PodEq(it->second, v));
    }
    EXPECT_EQ(n.fake.state.identity.size(), ref.fake.state.identity.size());
    for (const auto& [key, v] : ref.fake.state.identity) EXPECT_TRUE(n.fake.state.identity.count(key));
    EXPECT_EQ(n.fake.state.endpoints.size(), ref.fake.state.endpoints.size());
    for (const auto& [ifx, ep] : ref.fake.state.endpoints) {
      auto it = n.fake.state.endpoints.find(ifx);
      ASSERT_NE(it, n.fake.state.endpoints.end());
      EXPECT_TRUE(PodEq(it->second, ep)) << "ifindex " << ifx;
    }
    EXPECT_EQ(n.fake.links, ref.fake.links);
    if (::testing::Test::HasFailure()) return;
  }
}

constexpr auto IN = v1::INGRESS;
constexpr auto OUT = v1::EGRESS;
constexpr auto A = v1::ALLOW;
constexpr auto D = v1::DENY;

struct Transition {
  const char* name;
  Config from, to;
};

const std::vector<Transition>& Table() {
  static const std::vector<Transition> t = {
      {"a new peer allowed", {{{1, 301, true, false, {{300, 80, IN, A, 1}}}, {0, 300}}},
       {{{1, 301, true, false, {{300, 80, IN, A, 1}, {302, 80, IN, A, 2}}}, {0, 300}}, {{"10.1.0.1", 32, 302}}}},
      // The new config denies (any, port) but allows one peer on it: written
      // in key order, the deny could land first and cut that peer off.
      {"(any, port) allowed becomes one peer allowed, the rest denied",
       {{{1, 301, true, false, {{0, 80, IN, A, 1}}}, {0, 300}}},
       {{{1, 301, true, false, {{300, 80, IN, A, 2}, {0, 80, IN, D, 3}}}, {0, 300}}}},
      // The old config's (peer, any) deny was shadowed by (peer, port):
      // deleting the allow first would expose it.
      {"a shadowed deny and its allow go, (any, port) allows",
       {{{1, 301, true, false, {{300, 80, IN, A, 1}, {300, 0, IN, D, 2}}}, {0, 300}}},
       {{{1, 301, true, false, {{0, 80, IN, A, 3}}}, {0, 300}}}},
      {"enforcement on, with its entries", {{{1, 301}, {0, 300}}},
       {{{1, 301, true, false, {{300, 80, IN, A, 1}}}, {0, 300}}}},
      {"enforcement off", {{{1, 301, true, true, {{300, 80, IN, A, 1}, {0, 0, OUT, A, 2}}}, {0, 300}}},
       {{{1, 301}, {0, 300}}}},
      // Entries of a direction the endpoint no longer enforces: written
      // while the old endpoint entry still enforces it, they would decide.
      {"enforcement off, entries left for the direction",
       {{{1, 301, true, false, {{300, 80, IN, A, 1}}}, {0, 300}}},
       {{{1, 301, false, false, {{300, 80, IN, D, 2}}}, {0, 300}}}},
      {"enforcement moves from ingress to egress",
       {{{1, 301, true, false, {{300, 80, IN, A, 1}, {0, 0, OUT, D, 2}}}, {0, 300}}},
       {{{1, 301, false, true, {{0, 0, IN, D, 3}, {300, 0, OUT, A, 4}}}, {0, 300}}}},
      {"egress enforced on the client",
       {{{0, 300}, {1, 301, true, false, {{300, 0, IN, A, 1}}}}},
       {{{0, 300, false, true, {{301, 80, OUT, A, 4}, {0, 0, OUT, D, 5}}}, {1, 301, true, false, {{300, 0, IN, A, 1}}}}}},
      {"a workload goes, another comes",
       {{{0, 300}, {1, 301, true, false, {{300, 80, IN, A, 1}}}}},
       {{{2, 302, true, false, {{300, 80, IN, A, 1}}}, {1, 301, true, false, {{300, 80, IN, A, 1}}}}}},
      {"another workload on the same interface",
       {{{0, 300, true, false, {{301, 0, IN, A, 1}}}, {1, 301}}},
       {{{0, 303, true, false, {{301, 0, IN, A, 1}}, "w0-new"}, {1, 301}}}},
      {"policy ids change only", {{{1, 301, true, false, {{300, 80, IN, A, 1}, {300, 8080, IN, A, 1}}}, {0, 300}}},
       {{{1, 301, true, false, {{300, 80, IN, A, 7}, {300, 8080, IN, A, 7}}}, {0, 300}}}},
      {"a host entry inside a remote prefix",
       {{{1, 301, true, false, {{302, 0, IN, A, 1}, {303, 80, IN, A, 2}}}}, {{"10.1.0.0", 16, 302}}},
       {{{1, 301, true, false, {{302, 0, IN, A, 1}, {303, 80, IN, A, 2}}}},
        {{"10.1.0.0", 16, 302}, {"10.1.0.2", 32, 303}}}},
      {"everything goes", {{{0, 300, true, true, {{0, 0, IN, A, 1}, {0, 0, OUT, A, 1}}}, {1, 301}}}, {}},
  };
  return t;
}

TEST(PolicyReconcile, NoIntermediateStateDeniesWhatBothAllow) {
  for (const auto& t : Table()) {
    SCOPED_TRACE(t.name);
    size_t writes = CheckTransition(t.from, t.to);
    EXPECT_GT(writes, 0u);
    // And back.
    CheckTransition(t.to, t.from);
  }
}

TEST(PolicyReconcile, AFailedWriteRollsBackToTheOldState) {
  for (const auto& t : Table()) {
    SCOPED_TRACE(t.name);
    size_t writes = CheckTransition(t.from, t.to);
    CheckRollbacks(t.from, t.to, writes);
  }
}

Config RandomConfig(std::mt19937& rng) {
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  Config c;
  for (int i = 0; i < kPods; ++i) {
    if (pick(5) == 0) continue;
    Pod p{i, 300u + (pick(4) == 0 ? pick(4) : static_cast<uint32_t>(i))};
    p.ingress = pick(2) == 0;
    p.egress = pick(3) == 0;
    std::map<std::tuple<uint32_t, uint32_t, int>, bool> keys;  // one verdict per key
    for (uint32_t n = pick(5); n > 0; --n) {
      Entry e{pick(3) == 0 ? 0 : 300 + pick(4), std::vector<uint32_t>{0, 80, 8080}[pick(3)], pick(3) ? IN : OUT,
              pick(10) < 7 ? A : D, 1 + pick(3)};
      if (!keys.emplace(std::make_tuple(e.peer, e.port, static_cast<int>(e.dir)), true).second) continue;
      p.entries.push_back(e);
    }
    c.pods.push_back(p);
  }
  if (pick(2)) c.cache.emplace_back("10.1.0.0", 16, 302);
  if (pick(2)) c.cache.emplace_back("10.1.0.1", 32, 300 + pick(4));
  if (pick(3)) c.cache.emplace_back("10.2.0.9", 32, 303);
  return c;
}

TEST(PolicyReconcile, RandomTransitions) {
  std::mt19937 rng(20261203);
  Config cur = RandomConfig(rng);
  size_t total = 0;
  for (int step = 0; step < 300; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    Config next = RandomConfig(rng);
    size_t writes = CheckTransition(cur, next);
    total += writes;
    if (step % 10 == 0) CheckRollbacks(cur, next, writes);
    if (::testing::Test::HasFailure()) return;
    cur = next;
  }
  EXPECT_GT(total, 1000u);
}

// ---- the pieces ----

// The plan's write order (policy/reconcile.hpp), visible in the calls.
TEST(PolicyReconcile, WritesInTheDocumentedOrder) {
  Node n;
  Start(n, {{{0, 300}, {1, 301, true, false, {{300, 80, IN, A, 1}}}}});
  n.fake.log.clear();
  ASSERT_TRUE(n.applier
                  .Apply(Desired({{{2, 302, true, false, {{300, 80, IN, A, 1}, {0, 0, IN, D, 2}}},
                                   {1, 301, true, false, {{302, 80, IN, A, 1}}}}}),
                         PolicyChange{}, 2)
                  .ok());
  EXPECT_EQ(n.fake.log, (std::vector<std::string>{"UpsertPolicy:3", "UpsertIdentity:1", "UpsertEndpoints:1",
                                                  "Attach 12 to_pod", "Detach 10", "DeleteEndpoints:1",
                                                  "DeletePolicy:1", "DeleteIdentity:1", "BumpRevision"}));
  // The same config again: nothing written, the revision stays.
  const uint32_t rev = n.fake.revision;
  n.fake.log.clear();
  ASSERT_TRUE(n.applier
                  .Apply(Desired({{{2, 302, true, false, {{300, 80, IN, A, 1}, {0, 0, IN, D, 2}}},
                                   {1, 301, true, false, {{302, 80, IN, A, 1}}}}}),
                         PolicyChange{}, 3)
                  .ok());
  EXPECT_TRUE(n.fake.log.empty()) << n.fake.log.front();
  EXPECT_EQ(n.fake.revision, rev);
}

// An identity-cache-only change writes only its keys (the fast path) and
// leaves the maps as a full apply would.
TEST(PolicyReconcile, IdentityOnlyChangeWritesOnlyItsKeys) {
  Config c{{{0, 300}, {1, 301, true, false, {{302, 0, IN, A, 1}}}}, {{"10.1.0.1", 32, 302}}};
  PolicyState s;
  ASSERT_TRUE(s.ApplySnapshot(ToProto(c)).ok());
  s.Commit();
  Node n;
  ASSERT_TRUE(n.applier.Apply(s.desired(), PolicyChange{}, 1).ok());
  v1::NodeConfigDelta d;
  auto* up = d.add_upserted_identity_cache();
  up->set_prefix(Bytes(*IpAddr::Parse("10.1.0.2")));
  up->set_prefix_len(32);
  up->set_identity(302);
  auto* rm = d.add_removed_identity_cache();
  rm->set_prefix(Bytes(*IpAddr::Parse("10.1.0.1")));
  rm->set_prefix_len(32);
  auto change = s.ApplyDelta(d);
  ASSERT_TRUE(change.ok()) << change.status().message();
  EXPECT_FALSE(change->full);
  n.fake.log.clear();
  ASSERT_TRUE(n.applier.Apply(s.desired(), *change, 2).ok());
  EXPECT_EQ(n.fake.log, (std::vector<std::string>{"UpsertIdentity:1", "DeleteIdentity:1", "BumpRevision"}));
  c.cache = {{"10.1.0.2", 32, 302}};
  Node full;
  Start(full, c);
  ASSERT_EQ(n.fake.state.identity.size(), full.fake.state.identity.size());
  for (const auto& [k, v] : full.fake.state.identity) EXPECT_TRUE(n.fake.state.identity.count(k));
}

TEST(Placement, InterfacesIdsAndWhatCannotBePlaced) {
  auto route = [](const IpAddr& a) -> Result<Interface> {
    const std::string s = a.ToString();
    if (s == "10.0.0.1" || s == "fd00::1") return Interface{10, "h0", "veth"};
    if (s == "10.0.0.2") return Interface{11, "h1", "veth"};
    if (s == "10.0.0.3") return Interface{2, "eth0", "device"};
    if (s == "10.0.0.6") return Interface{11, "h1", "veth"};
    return Status::Error("no route to " + s, ENETUNREACH);
  };
  v1::NodeConfig c;
  auto add = [&](const std::string& name, std::vector<std::string> addrs, uint32_t id) {
    auto* w = c.add_local_workloads();
    w->set_namespace_("ns");
    w->set_name(name);
    for (const auto& a : addrs) {
      IpAddr ip = *IpAddr::Parse(a);
      w->add_addresses(ip.is_v4() ? Bytes(ip) : std::string(reinterpret_cast<const char*>(ip.bytes().data()), 16));
    }
    w->set_identity(id);
  };
  add("a", {"10.0.0.1"}, 300);
  add("a-v6", {"fd00::1"}, 300);        // the same endpoint: merged
  add("b", {"10.0.0.2", "10.0.0.9"}, 301);  // its second address routes elsewhere: not its source
  add("c", {"10.0.0.3"}, 302);          // not a veth
  add("d", {"10.0.0.4"}, 303);          // no route
  add("e", {"10.0.0.6"}, 304);          // b's interface with another identity
  auto d = PolicyState::Convert(c);
  ASSERT_TRUE(d.ok()) << d.status().message();
  // ifindex 11 held ep id 1 in the maps; ep id 2 is some other interface's, still there.
  std::map<uint32_t, weft_endpoint> live;
  live[11].ep_id = 1;
  live[99].ep_id = 2;
  PlacementResult r = PlaceEndpoints(*d, route, live, {});
  ASSERT_EQ(r.placement.size(), 3u);
  EXPECT_EQ(r.placement.at("ns/a").ifindex, 10u);
  EXPECT_EQ(r.placement.at("ns/a").ep_id, 3u) << "the smallest id neither in the maps nor claimed";
  EXPECT_EQ(r.placement.at("ns/a").addresses.size(), 2u);
  EXPECT_EQ(r.placement.at("ns/a-v6").ep_id, 3u);
  EXPECT_EQ(r.placement.at("ns/b").ep_id, 1u) << "adopted by interface";
  EXPECT_EQ(r.placement.at("ns/b").addresses, std::vector<IpAddr>{*IpAddr::Parse("10.0.0.2")});
  EXPECT_EQ(r.notes.size(), 1u);
  ASSERT_EQ(r.unplaced.size(), 3u);
  EXPECT_TRUE(r.unplaced.at("ns/c").no_interface);
  EXPECT_NE(r.unplaced.at("ns/c").why.find("not a veth"), std::string::npos);
  EXPECT_TRUE(r.unplaced.at("ns/d").no_interface);
  EXPECT_FALSE(r.unplaced.at("ns/e").no_interface);
  EXPECT_EQ(UnplacedAddresses(*d, r), (std::set<IpAddr>{*IpAddr::Parse("10.0.0.3"), *IpAddr::Parse("10.0.0.4")}));
  // Placed again without the maps' entries: each workload keeps its id.
  PlacementResult again = PlaceEndpoints(*d, route, {}, r.placement);
  EXPECT_EQ(again.placement.at("ns/a").ep_id, 3u);
  EXPECT_EQ(again.placement.at("ns/b").ep_id, 1u);
}

}  // namespace
}  // namespace weft::policy
