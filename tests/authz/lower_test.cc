// Lower(): the kernel's lookup order over the lowered entries gives exactly
// Evaluate()'s decision. Concrete cases, then the property over random policy
// sets (deterministic seeds) for every (peer address, port) of a small universe.
#include <gtest/gtest.h>

#include <random>

#include "authz/lower.hpp"
#include "tests/authz/authz_test_util.hpp"

namespace weft::authz {
namespace {

using namespace testing;  // NOLINT
using nlohmann::json;

TEST(Lower, BookinfoL4) {
  auto res = Resources(ReadFile(std::string(WEFT_SHARED_DIR) + "/istio-samples/security/authz-http.yaml"));
  for (auto& r : res) {
    if (r.object["spec"].contains("rules")) {
      for (auto& rule : r.object["spec"]["rules"]) rule.erase("to");
    }
  }
  auto policies = ParsePolicies(res);
  const Workload productpage =
      MakeWorkload("default", "productpage", "productpage", "bookinfo-productpage", {"10.0.0.10"});
  const Workload details = MakeWorkload("default", "details", "details", "bookinfo-details", {"10.0.0.11"});
  const Workload reviews = MakeWorkload("default", "reviews", "reviews", "bookinfo-reviews", {"10.0.0.12"});
  const Workload ratings = MakeWorkload("default", "ratings", "ratings", "bookinfo-ratings", {"10.0.0.13"});
  const Workload other = MakeWorkload("other", "sleep", "sleep", "sleep", {"10.0.0.14"});
  std::vector<Workload> all = {productpage, details, reviews, ratings, other};
  IdentityTable ids = IdentityAllocator().Allocate(all, policies);

  LoweredPolicy lp = Lower(policies, ratings, ids);
  EXPECT_TRUE(lp.enforce_ingress);
  EXPECT_EQ(lp.policies, (std::vector<std::string>{"default/allow-nothing", "default/ratings-viewer"}));
  // (ANY, ANY) default deny, (reviews, ANY) allow, UDP not enforced: nothing else.
  uint32_t rev = ids.Resolve(Ip("10.0.0.12"));
  std::vector<PolicyEntry> want = {
      {kAnyPeer, kAnyPort, kProtoTcp, WEFT_DIR_INGRESS, {Verdict::kDeny, Reason::kDefaultDeny, ""}},
      {rev, kAnyPort, kProtoTcp, WEFT_DIR_INGRESS, {Verdict::kAllow, Reason::kAllowed, "default/ratings-viewer"}},
      {kAnyPeer, kAnyPort, kProtoUdp, WEFT_DIR_INGRESS, {Verdict::kAllow, Reason::kNotEnforced, ""}},
  };
  EXPECT_EQ(lp.entries, want);
  EXPECT_EQ(Lookup(lp, rev, 9080).verdict, Verdict::kAllow);
  EXPECT_EQ(Lookup(lp, ids.Resolve(Ip("10.0.0.10")), 9080).verdict, Verdict::kDeny);
  EXPECT_EQ(Lookup(lp, WEFT_IDENTITY_UNKNOWN, 9080).verdict, Verdict::kDeny);
  EXPECT_EQ(DropReasonOf(Lookup(lp, WEFT_IDENTITY_UNKNOWN, 9080)), static_cast<uint32_t>(WEFT_DROP_POLICY_DEFAULT));
  EXPECT_EQ(DropReasonOf(Lookup(lp, rev, 9080)), static_cast<uint32_t>(WEFT_DROP_NONE));
  EXPECT_EQ(DropReasonOf(Decision{Verdict::kDeny, Reason::kDenied, "a/b"}),
            static_cast<uint32_t>(WEFT_DROP_POLICY_DENIED));

  // A workload no policy selects outside default: not enforced, no entries.
  LoweredPolicy none = Lower(policies, other, ids);
  EXPECT_FALSE(none.enforce_ingress);
  EXPECT_TRUE(none.entries.empty());
  EXPECT_EQ(Lookup(none, rev, 1), (Decision{Verdict::kAllow, Reason::kNoPolicy, ""}));
}

// --- the property ----------------------------------------------------------------

struct Universe {
  std::vector<std::string> namespaces = {"ns-a", "ns-b", "istio-system"};
  std::vector<std::string> sas = {"sa1", "sa2", "default"};
  std::vector<std::string> apps = {"x", "y"};
  std::vector<std::string> cidrs = {"10.0.0.0/8", "10.0.0.0/16", "10.0.1.0/24", "10.0.1.128/25",
                                    "10.0.1.1",   "192.168.0.0/16", "fd00::/64", "0.0.0.0/0"};
  std::vector<std::string> workload_ips = {"10.0.1.1", "10.0.1.2", "10.0.1.130", "10.0.2.1",
                                           "10.1.0.1", "172.16.0.1", "fd00::1", "fd01::1"};
  std::vector<std::string> other_ips = {"10.0.1.3", "10.0.1.200", "10.0.9.9", "10.9.0.1", "192.168.1.1",
                                        "172.16.0.2", "8.8.8.8", "fd00::99", "fd02::1"};
  std::vector<uint16_t> ports = {80, 443, 8080, 9080};
  std::vector<uint16_t> probe_ports = {80, 443, 8080, 9080, 1, 12345};
};

class Gen {
 public:
  Gen(uint32_t seed, const Universe& u) : rng_(seed), u_(u) {}

  bool Coin(int pct) { return std::uniform_int_distribution<int>(0, 99)(rng_) < pct; }
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[Int(0, static_cast<int>(v.size()) - 1)]; }
  template <typename T>
  json Some(const std::vector<T>& v, int max = 2) {
    json out = json::array();
    int n = Int(1, max);
    for (int i = 0; i < n; ++i) out.push_back(Pick(v));
    return out;
  }
  json Ports() {
    json out = json::array();
    int n = Int(1, 2);
    for (int i = 0; i < n; ++i) out.push_back(std::to_string(Pick(u_.ports)));
    return out;
  }
  std::string Principal() {
    switch (Int(0, 4)) {
      case 0: return "*";
      case 1: return "cluster.local/ns/" + Pick(u_.namespaces) + "/*";
      case 2: return "*/sa/" + Pick(u_.sas);
      default: return "cluster.local/ns/" + Pick(u_.namespaces) + "/sa/" + Pick(u_.sas);
    }
  }
  std::string Namespace() {
    switch (Int(0, 5)) {
      case 0: return "*";
      case 1: return "ns-*";
      case 2: return "*-b";
      default: return Pick(u_.namespaces);
    }
  }
  json Principals() {
    json out = json::array();
    int n = Int(1, 2);
    for (int i = 0; i < n; ++i) out.push_back(Principal());
    return out;
  }
  json Namespaces() {
    json out = json::array();
    int n = Int(1, 2);
    for (int i = 0; i < n; ++i) out.push_back(Namespace());
    return out;
  }

  json Source() {
    json s = json::object();
    do {
      if (Coin(25)) s["principals"] = Principals();
      if (Coin(15)) s["notPrincipals"] = Principals();
      if (Coin(25)) s["namespaces"] = Namespaces();
      if (Coin(15)) s["notNamespaces"] = Namespaces();
      if (Coin(10)) s["serviceAccounts"] = ServiceAccounts();
      if (Coin(6)) s["notServiceAccounts"] = ServiceAccounts();
      if (Coin(25)) s["ipBlocks"] = Some(u_.cidrs);
      if (Coin(15)) s["notIpBlocks"] = Some(u_.cidrs);
      if (Coin(7)) s["requestPrincipals"] = json::array({"*"});
      if (Coin(4)) s["remoteIpBlocks"] = json::array({"10.0.0.0/8"});
    } while (s.empty());
    // Istio refuses serviceAccounts beside principals or namespaces.
    if (s.contains("serviceAccounts") || s.contains("notServiceAccounts")) {
      for (const char* k : {"principals", "notPrincipals", "namespaces", "notNamespaces"}) s.erase(k);
    }
    return s;
  }
  // "<ns>/<sa>", or a bare "<sa>": the policy's namespace.
  json ServiceAccounts() {
    json out = json::array();
    int n = Int(1, 2);
    for (int i = 0; i < n; ++i) out.push_back(Coin(50) ? Pick(u_.sas) : Pick(u_.namespaces) + "/" + Pick(u_.sas));
    return out;
  }
  json Operation() {
    json o = json::object();
    do {
      if (Coin(50)) o["ports"] = Ports();
      if (Coin(25)) o["notPorts"] = Ports();
      if (Coin(10)) o["methods"] = json::array({"GET"});
      if (Coin(5)) o["paths"] = json::array({"/ip"});
    } while (o.empty());
    return o;
  }
  json Condition() {
    json c = json::object();
    int k = Int(0, 6);
    static const char* const kKeys[] = {"source.ip",      "source.namespace", "source.principal",
                                        "destination.port", "destination.ip",   "request.headers[x-token]",
                                        "source.serviceAccount"};
    c["key"] = kKeys[k];
    auto values = [&]() -> json {
      switch (k) {
        case 0: return Some(u_.cidrs);
        case 1: return Namespaces();
        case 2: return Principals();
        case 3: return Ports();
        case 4: return Some(u_.workload_ips);
        case 6: return ServiceAccounts();
        default: return json::array({"admin"});
      }
    };
    bool pos = Coin(60);
    if (pos) c["values"] = values();
    if (!pos || Coin(20)) c["notValues"] = values();
    return c;
  }
  json Rule() {
    json r = json::object();
    if (Coin(60)) {
      r["from"] = json::array();
      int n = Int(1, 2);
      for (int i = 0; i < n; ++i) r["from"].push_back({{"source", Source()}});
    }
    if (Coin(50)) {
      r["to"] = json::array();
      int n = Int(1, 2);
      for (int i = 0; i < n; ++i) r["to"].push_back({{"operation", Operation()}});
    }
    if (Coin(30)) {
      r["when"] = json::array();
      int n = Int(1, 2);
      for (int i = 0; i < n; ++i) r["when"].push_back(Condition());
    }
    return r;
  }
  json PolicyObject(int index) {
    json spec = json::object();
    int a = Int(0, 99);
    std::string action = a < 50 ? "ALLOW" : a < 90 ? "DENY" : a < 95 ? "AUDIT" : "CUSTOM";
    if (action != "ALLOW" || Coin(50)) spec["action"] = action;
    if (action == "CUSTOM") spec["provider"] = {{"name", "ext"}};
    if (Coin(50)) spec["selector"] = {{"matchLabels", {{"app", Pick(u_.apps)}}}};
    // A DENY or CUSTOM needs a rule (Istio refuses one without); CUSTOM's see no identity.
    int nrules = Int(action == "ALLOW" || action == "AUDIT" ? 0 : 1, 3);
    if (nrules > 0 || Coin(50)) {
      spec["rules"] = json::array();
      for (int i = 0; i < nrules; ++i) spec["rules"].push_back(action == "CUSTOM" ? json::object() : Rule());
    }
    std::string ns = Coin(20) ? "istio-system" : Pick(u_.namespaces);
    return {{"apiVersion", "security.istio.io/v1"},
            {"kind", "AuthorizationPolicy"},
            {"metadata", {{"name", "p" + std::to_string(index)}, {"namespace", ns}}},
            {"spec", spec}};
  }
  std::vector<Workload> Workloads() {
    std::vector<std::string> ips = u_.workload_ips;
    std::shuffle(ips.begin(), ips.end(), rng_);
    std::vector<Workload> out;
    size_t next = 0;
    for (int i = 0; i < 5 && next < ips.size(); ++i) {
      std::vector<std::string> mine = {ips[next++]};
      if (next < ips.size() && Coin(30)) mine.push_back(ips[next++]);
      std::string ns = Pick(std::vector<std::string>{"ns-a", "ns-b"});
      out.push_back(MakeWorkload(ns, "w" + std::to_string(i), Pick(u_.apps), Pick(u_.sas), mine));
    }
    return out;
  }

 private:
  std::mt19937 rng_;
  const Universe& u_;
};

TEST(Lower, PropertyLookupEqualsEvaluate) {
  const Universe u;
  const int kSeeds = 600;
  size_t cases = 0, allows = 0, denies = 0, enforced = 0, entries = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    Gen g(static_cast<uint32_t>(seed), u);
    std::vector<Policy> policies;
    std::vector<json> objects;
    int n = g.Int(1, 5);
    for (int i = 0; i < n; ++i) {
      objects.push_back(g.PolicyObject(i));
      policies.push_back(ParsePolicy(objects.back()));
    }
    std::vector<Workload> workloads = g.Workloads();
    IdentityTable ids = IdentityAllocator().Allocate(workloads, policies);

    // Every address of the universe, as the peer the evaluator sees: a workload
    // address carries its workload's identity, anything else is identity-less.
    std::vector<std::pair<Peer, uint32_t>> peers;  // (peer, identity the kernel resolves)
    for (const auto& w : workloads) {
      for (const auto& ip : w.addresses) {
        peers.emplace_back(Peer::FromIdentity(kDefaultTrustDomain, w.ns, w.sa(), ip), ids.Resolve(ip));
      }
    }
    for (const auto& s : u.other_ips) peers.emplace_back(Peer::Unknown(Ip(s)), ids.Resolve(Ip(s)));
    // Reserved identities (host, world) are "unmentioned" peers.
    peers.emplace_back(Peer::Unknown(), WEFT_IDENTITY_HOST);

    for (const auto& dst : workloads) {
      LoweredPolicy lp = Lower(policies, dst, ids);
      enforced += lp.enforce_ingress;
      entries += lp.entries.size();
      for (const auto& [peer, identity] : peers) {
        for (uint16_t port : u.probe_ports) {
          ++cases;
          Decision want = Evaluate(policies, dst, peer, port);
          Decision got = Lookup(lp, identity, port);
          (want.verdict == Verdict::kAllow ? allows : denies)++;
          if (got != want) {
            std::string dump;
            for (const auto& o : objects) dump += o.dump() + "\n";
            FAIL() << "seed " << seed << " dst " << dst.key() << " peer "
                   << (peer.spiffe_id ? *peer.spiffe_id : "(none)") << " "
                   << (peer.ip ? peer.ip->ToString() : "-") << " identity " << identity << " port " << port
                   << ": lookup " << got.ToString() << ", evaluate " << want.ToString() << "\n"
                   << dump;
          }
        }
        // UDP is never enforced, in both.
        ASSERT_EQ(Lookup(lp, identity, 53, kProtoUdp), Evaluate(policies, dst, peer, 53, kProtoUdp));
      }
    }
  }
  // The generator must exercise both outcomes and enforcement.
  EXPECT_GT(cases, 100000u);
  EXPECT_GT(allows, cases / 10);
  EXPECT_GT(denies, cases / 10);
  EXPECT_GT(enforced, static_cast<size_t>(kSeeds));
  RecordProperty("cases", static_cast<int>(cases));
  std::printf("lookup == evaluate over %zu cases (%zu allow, %zu deny), %zu enforced workloads, %zu entries\n",
              cases, allows, denies, enforced, entries);
}

// The random policies must be valid Istio objects, else the property says little.
TEST(Lower, GeneratorProducesValidPolicies) {
  const Universe u;
  for (int seed = 1; seed <= 50; ++seed) {
    Gen g(static_cast<uint32_t>(seed), u);
    std::string yaml;
    for (int i = 0; i < 4; ++i) yaml += config::ToYaml(g.PolicyObject(i)) + "\n---\n";
    auto parsed = config::ParseResources(yaml, "gen");
    ASSERT_TRUE(parsed.ok()) << "seed " << seed << ": " << parsed.status().message() << "\n" << yaml;
  }
}

}  // namespace
}  // namespace weft::authz
