// The reference evaluator against the Istio docs' authorization tasks
// (../shared/istio-samples/security, EXPECTED.md) at L4, and a table of the
// semantics (DENY before ALLOW, default deny, ports, namespaces, ipBlocks,
// root namespace, L7 attributes at L4).
#include <gtest/gtest.h>

#include "authz/evaluator.hpp"
#include "tests/authz/authz_test_util.hpp"

namespace weft::authz {
namespace {

using namespace testing;  // NOLINT

const Workload kProductpage =
    MakeWorkload("default", "productpage-v1", "productpage", "bookinfo-productpage", {"10.0.0.10"});
const Workload kDetails = MakeWorkload("default", "details-v1", "details", "bookinfo-details", {"10.0.0.11"});
const Workload kReviews = MakeWorkload("default", "reviews-v1", "reviews", "bookinfo-reviews", {"10.0.0.12"});
const Workload kRatings = MakeWorkload("default", "ratings-v1", "ratings", "bookinfo-ratings", {"10.0.0.13"});
const Workload kOther = MakeWorkload("default", "sleep", "sleep", "sleep", {"10.0.0.20"});

// The first n documents of authz-http.yaml ("apply in order").
std::vector<Policy> HttpTaskStep(size_t n, bool strip_l7) {
  auto res = Resources(ReadFile(std::string(WEFT_SHARED_DIR) + "/istio-samples/security/authz-http.yaml"));
  if (n < res.size()) res.resize(n);
  if (strip_l7) {
    // The L4 rendering of the task: the same principals, without `to: methods`.
    for (auto& r : res) {
      auto& spec = r.object["spec"];
      if (!spec.contains("rules")) continue;
      for (auto& rule : spec["rules"]) rule.erase("to");
    }
  }
  return ParsePolicies(res);
}

struct Row {
  std::string name;
  size_t step;     // documents of authz-http.yaml applied
  bool strip_l7;   // the L4 rendering (to: methods removed)
  Workload src, dst;
  Verdict want;
  std::string want_policy;  // "" for default deny
};

TEST(AuthzHttpTask, L4Table) {
  const Decision kDefault{Verdict::kDeny, Reason::kDefaultDeny, ""};
  const std::vector<Row> rows = {
      // allow-nothing only: any -> any is refused.
      {"allow-nothing: productpage->details", 1, false, kProductpage, kDetails, Verdict::kDeny, ""},
      {"allow-nothing: other->productpage", 1, false, kOther, kProductpage, Verdict::kDeny, ""},
      {"allow-nothing: reviews->ratings", 1, false, kReviews, kRatings, Verdict::kDeny, ""},
      // productpage-viewer allows GET: an L7 ALLOW rule cannot match at L4.
      {"L7 allow at L4: GET productpage", 2, false, kOther, kProductpage, Verdict::kDeny, ""},
      {"L7 allow at L4: productpage GET details", 4, false, kProductpage, kDetails, Verdict::kDeny, ""},
      {"L7 allow at L4: reviews GET ratings", 5, false, kReviews, kRatings, Verdict::kDeny, ""},
      // L4 rendering: EXPECTED.md's identity answers.
      {"L4: any -> productpage", 2, true, kOther, kProductpage, Verdict::kAllow, "default/productpage-viewer"},
      {"L4: productpage -> details", 4, true, kProductpage, kDetails, Verdict::kAllow, "default/details-viewer"},
      {"L4: productpage -> reviews", 4, true, kProductpage, kReviews, Verdict::kAllow, "default/reviews-viewer"},
      {"L4: other identity -> details", 4, true, kOther, kDetails, Verdict::kDeny, ""},
      {"L4: reviews -> details", 4, true, kReviews, kDetails, Verdict::kDeny, ""},
      {"L4: reviews -> ratings", 5, true, kReviews, kRatings, Verdict::kAllow, "default/ratings-viewer"},
      {"L4: productpage -> ratings", 5, true, kProductpage, kRatings, Verdict::kDeny, ""},
      {"L4: ratings before ratings-viewer", 4, true, kReviews, kRatings, Verdict::kDeny, ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto policies = HttpTaskStep(row.step, row.strip_l7);
    Decision got = Evaluate(policies, row.dst, PeerOf(row.src), 9080);
    EXPECT_EQ(got.verdict, row.want) << got.ToString();
    EXPECT_EQ(got.policy, row.want_policy) << got.ToString();
    if (row.want == Verdict::kDeny) {
      EXPECT_EQ(got, kDefault) << got.ToString();
    }
  }
  // An unknown (plaintext) peer never has a principal.
  EXPECT_EQ(Evaluate(HttpTaskStep(5, true), kRatings, Peer::Unknown(Ip("10.9.9.9")), 9080), kDefault);
  EXPECT_EQ(kDefault.ToString(), "DENY default deny: ALLOW policies select the workload");
}

TEST(AuthzDenyTask, L7DenyFailsClosedAtL4) {
  const Workload httpbin = MakeWorkload("foo", "httpbin", "httpbin", "httpbin", {"10.0.1.1"});
  const Workload sleep = MakeWorkload("foo", "sleep", "sleep", "sleep", {"10.0.1.2"});
  auto dir = std::string(WEFT_SHARED_DIR) + "/istio-samples/security/";
  auto step1 = Policies(ReadFile(dir + "authz-deny-step1.yaml"));
  auto step2 = Policies(ReadFile(dir + "authz-deny-step2.yaml"));
  auto step3 = Policies(ReadFile(dir + "authz-deny-step2.yaml") + "\n---\n" + ReadFile(dir + "authz-deny-step3.yaml"));
  // none: allowed.
  EXPECT_EQ(Evaluate({}, httpbin, PeerOf(sleep), 8000), (Decision{Verdict::kAllow, Reason::kNoPolicy, ""}));
  // step1 (DENY GET): L4 cannot see the method, so it denies all of it (GET 403 holds; POST is denied too).
  EXPECT_EQ(Evaluate(step1, httpbin, PeerOf(sleep), 8000),
            (Decision{Verdict::kDeny, Reason::kDenied, "foo/deny-method-get"}));
  // step2 (DENY GET unless x-token admin): the header condition counts as matched.
  EXPECT_EQ(Evaluate(step2, httpbin, PeerOf(sleep), 8000).verdict, Verdict::kDeny);
  // step2+3: DENY is evaluated first.
  EXPECT_EQ(Evaluate(step3, httpbin, PeerOf(sleep), 8000),
            (Decision{Verdict::kDeny, Reason::kDenied, "foo/deny-method-get"}));
  // Other workloads of foo are not selected.
  EXPECT_EQ(Evaluate(step3, sleep, PeerOf(httpbin), 8000), (Decision{Verdict::kAllow, Reason::kNoPolicy, ""}));
  // UDP is not subject to AuthorizationPolicy.
  EXPECT_EQ(Evaluate(step1, httpbin, PeerOf(sleep), 8000, kProtoUdp),
            (Decision{Verdict::kAllow, Reason::kNotEnforced, ""}));
}

// --- the semantics table ---------------------------------------------------------

const Workload kHttpbin = MakeWorkload("foo", "httpbin", "httpbin", "httpbin", {"10.0.1.1"});
const Workload kSleepFoo = MakeWorkload("foo", "sleep", "sleep", "sleep", {"10.0.1.2"});
const Workload kSleepBar = MakeWorkload("bar", "sleep", "sleep", "sleep", {"10.0.2.2"});
const Workload kHttpbinBar = MakeWorkload("bar", "httpbin", "httpbin", "httpbin", {"10.0.2.1"});

std::string Ap(const std::string& ns, const std::string& name, const std::string& spec) {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec + "\n---\n";
}

struct SemRow {
  std::string name;
  std::string yaml;
  Workload dst;
  Peer src;
  uint16_t port;
  Decision want;
};

Decision Allow(const std::string& p) { return {Verdict::kAllow, Reason::kAllowed, p}; }
Decision Deny(const std::string& p) { return {Verdict::kDeny, Reason::kDenied, p}; }
const Decision kDefaultDeny{Verdict::kDeny, Reason::kDefaultDeny, ""};
const Decision kNoPolicy{Verdict::kAllow, Reason::kNoPolicy, ""};
const Decision kNoAllow{Verdict::kAllow, Reason::kNoAllowPolicy, ""};

TEST(AuthzSemantics, Table) {
  const std::string allow_sleep_foo = Ap("foo", "allow-sleep", R"(  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/foo/sa/sleep"])");
  const std::string deny_all_8000 = Ap("foo", "deny-8000", R"(  action: DENY
  rules:
  - to:
    - operation:
        ports: ["8000"])");
  const std::string ports = Ap("foo", "ports", R"(  selector:
    matchLabels:
      app: httpbin
  rules:
  - to:
    - operation:
        ports: ["80", "8000"]
        notPorts: ["8000"])");
  const std::string ns_rules = Ap("foo", "ns", R"(  rules:
  - from:
    - source:
        namespaces: ["fo*"]
        notNamespaces: ["foo"]
    - source:
        namespaces: ["*ar"])");
  const std::string not_ns = Ap("foo", "not-bar", R"(  action: ALLOW
  rules:
  - from:
    - source:
        notNamespaces: ["bar"])");
  const std::string ip_blocks = Ap("foo", "ips", R"(  rules:
  - from:
    - source:
        ipBlocks: ["10.0.0.0/16"]
        notIpBlocks: ["10.0.2.0/24", "10.0.1.2"])");
  const std::string root_deny = Ap("istio-system", "root-deny-bar", R"(  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["bar"])");
  const std::string root_selector = Ap("istio-system", "root-httpbin", R"(  selector:
    matchLabels:
      app: httpbin
  rules:
  - from:
    - source:
        principals: ["*/sa/sleep"])");
  const std::string allow_nothing = Ap("foo", "allow-nothing", "  {}");
  // (A DENY without rules is refused at admission, as istiod refuses it:
  // tests/testdata/resources/invalid/authorizationpolicy-istio-rules.yaml.)
  const std::string deny_everything = Ap("foo", "deny-all", "  action: DENY\n  rules:\n  - {}");
  const std::string empty_rule = Ap("foo", "allow-all", "  rules:\n  - {}");
  const std::string l7_source_allow = Ap("foo", "jwt", R"(  rules:
  - from:
    - source:
        requestPrincipals: ["*"]
    - source:
        principals: ["*"])");
  const std::string l7_deny_port = Ap("foo", "deny-get-80", R"(  action: DENY
  rules:
  - to:
    - operation:
        methods: ["GET"]
        ports: ["80"])");
  const std::string when_l4 = Ap("foo", "when", R"(  rules:
  - when:
    - key: source.namespace
      values: ["foo"]
    - key: destination.port
      notValues: ["9000"]
    - key: source.ip
      values: ["10.0.0.0/8"])");
  const std::string when_dst_ip = Ap("foo", "dstip", R"(  rules:
  - when:
    - key: destination.ip
      values: ["10.0.1.1"])");
  const std::string star = Ap("foo", "any-authn", R"(  rules:
  - from:
    - source:
        principals: ["*"])");
  const std::string not_principal = Ap("foo", "not-sleep", R"(  rules:
  - from:
    - source:
        notPrincipals: ["cluster.local/ns/foo/sa/sleep"])");
  const std::string sas = Ap("foo", "sas", R"(  rules:
  - from:
    - source:
        serviceAccounts: ["bar/sleep"])");
  // Istio resolves a bare service account to the policy's namespace
  // (serviceAccountRegex): before, a bare name never matched, so an ALLOW
  // denied its own account, a DENY let it through and notServiceAccounts
  // excluded nobody.
  const std::string sa_allow_bare = Ap("foo", "sa-allow", R"(  rules:
  - from:
    - source:
        serviceAccounts: ["sleep"])");
  const std::string sa_deny_bare = Ap("foo", "sa-deny", R"(  action: DENY
  rules:
  - from:
    - source:
        serviceAccounts: ["sleep"])");
  const std::string sa_not_bare = Ap("foo", "sa-not", R"(  rules:
  - from:
    - source:
        notServiceAccounts: ["sleep"])");
  const std::string sa_when_bare = Ap("foo", "sa-when", R"(  action: DENY
  rules:
  - when:
    - key: source.serviceAccount
      values: ["sleep"])");
  const std::string sa_when_not = Ap("foo", "sa-when-not", R"(  rules:
  - when:
    - key: source.serviceAccount
      notValues: ["sleep", "bar/sleep"])");
  const std::string sa_root_bare = Ap("istio-system", "root-sa", R"(  action: DENY
  rules:
  - from:
    - source:
        serviceAccounts: ["sleep"])");
  const std::string trust_domain = Ap("foo", "td", R"(  rules:
  - when:
    - key: source.trustDomain
      values: ["cluster.*"])");
  const std::string other_trust_domain = Ap("foo", "td-other", R"(  rules:
  - when:
    - key: source.trustDomain
      values: ["example.org"])");
  const std::string audit_custom =
      Ap("foo", "audit", "  action: AUDIT\n  rules:\n  - {}") +
      Ap("foo", "custom", "  action: CUSTOM\n  provider:\n    name: ext\n  rules:\n  - {}");
  const std::string targeted = Ap("foo", "waypoint", R"(  targetRefs:
  - kind: Service
    group: ""
    name: httpbin
  rules:
  - from:
    - source:
        principals: ["nobody"])");

  const Peer sleep_foo = PeerOf(kSleepFoo);
  const Peer sleep_bar = PeerOf(kSleepBar);
  const Peer unknown = Peer::Unknown(Ip("192.168.0.1"));
  const Peer unknown_in_range = Peer::Unknown(Ip("10.0.3.3"));

  const std::vector<SemRow> rows = {
      {"no policy", "", kHttpbin, sleep_foo, 8000, kNoPolicy},
      {"allow principal", allow_sleep_foo, kHttpbin, sleep_foo, 8000, Allow("foo/allow-sleep")},
      {"default deny once an ALLOW applies", allow_sleep_foo, kHttpbin, sleep_bar, 8000, kDefaultDeny},
      {"unknown peer has no principal", allow_sleep_foo, kHttpbin, unknown, 8000, kDefaultDeny},
      {"DENY beats ALLOW", allow_sleep_foo + deny_all_8000, kHttpbin, sleep_foo, 8000, Deny("foo/deny-8000")},
      {"DENY other port: ALLOW decides", allow_sleep_foo + deny_all_8000, kHttpbin, sleep_foo, 80,
       Allow("foo/allow-sleep")},
      {"only DENY policies, none matched", deny_all_8000, kHttpbin, sleep_foo, 80, kNoAllow},
      {"ports: listed", ports, kHttpbin, unknown, 80, Allow("foo/ports")},
      {"ports: notPorts wins", ports, kHttpbin, unknown, 8000, kDefaultDeny},
      {"ports: unlisted", ports, kHttpbin, unknown, 81, kDefaultDeny},
      {"selector: other workload unaffected", ports, kSleepFoo, unknown, 81, kNoPolicy},
      {"other namespace unaffected", allow_sleep_foo, kHttpbinBar, unknown, 81, kNoPolicy},
      {"namespaces prefix and notNamespaces", ns_rules, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"namespaces suffix", ns_rules, kHttpbin, sleep_bar, 80, Allow("foo/ns")},
      {"namespaces need an identity", ns_rules, kHttpbin, unknown, 80, kDefaultDeny},
      {"notNamespaces: other ns", not_ns, kHttpbin, sleep_foo, 80, Allow("foo/not-bar")},
      {"notNamespaces: listed ns", not_ns, kHttpbin, sleep_bar, 80, kDefaultDeny},
      {"notNamespaces: unknown peer passes", not_ns, kHttpbin, unknown, 80, Allow("foo/not-bar")},
      {"ipBlocks: in range", ip_blocks, kHttpbin, unknown_in_range, 80, Allow("foo/ips")},
      {"ipBlocks: notIpBlocks CIDR", ip_blocks, kHttpbin, sleep_bar, 80, kDefaultDeny},
      {"ipBlocks: notIpBlocks single IP", ip_blocks, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"ipBlocks: out of range", ip_blocks, kHttpbin, unknown, 80, kDefaultDeny},
      {"root namespace: mesh-wide DENY", root_deny, kHttpbin, sleep_bar, 80, Deny("istio-system/root-deny-bar")},
      {"root namespace: DENY other ns", root_deny, kHttpbin, sleep_foo, 80, kNoAllow},
      {"root namespace selector applies in every ns", root_selector, kHttpbinBar, sleep_foo, 80,
       Allow("istio-system/root-httpbin")},
      {"root namespace selector: principal suffix", root_selector, kHttpbinBar, unknown, 80, kDefaultDeny},
      {"root namespace selector: not selected", root_selector, kSleepBar, unknown, 80, kNoPolicy},
      {"allow-nothing", allow_nothing, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"allow-nothing beside an ALLOW", allow_nothing + allow_sleep_foo, kHttpbin, sleep_foo, 80,
       Allow("foo/allow-sleep")},
      {"DENY with an empty rule denies everything", deny_everything, kHttpbin, sleep_foo, 80, Deny("foo/deny-all")},
      {"empty rule matches everything", empty_rule, kHttpbin, unknown, 80, Allow("foo/allow-all")},
      {"ALLOW rule with an L7 source never matches", l7_source_allow, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"DENY L7 operation keeps its L4 part: port 80", l7_deny_port, kHttpbin, sleep_foo, 80,
       Deny("foo/deny-get-80")},
      {"DENY L7 operation keeps its L4 part: port 81", l7_deny_port, kHttpbin, sleep_foo, 81, kNoAllow},
      {"when: all L4 conditions hold", when_l4, kHttpbin, sleep_foo, 80, Allow("foo/when")},
      {"when: notValues port", when_l4, kHttpbin, sleep_foo, 9000, kDefaultDeny},
      {"when: namespace", when_l4, kHttpbin, sleep_bar, 80, kDefaultDeny},
      {"when: destination.ip", when_dst_ip, kHttpbin, unknown, 80, Allow("foo/dstip")},
      {"when: destination.ip other workload", when_dst_ip, kSleepFoo, unknown, 80, kDefaultDeny},
      {"principals *: authenticated", star, kHttpbin, sleep_bar, 80, Allow("foo/any-authn")},
      {"principals *: unknown", star, kHttpbin, unknown, 80, kDefaultDeny},
      {"notPrincipals: listed", not_principal, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"notPrincipals: unknown passes", not_principal, kHttpbin, unknown, 80, Allow("foo/not-sleep")},
      {"serviceAccounts", sas, kHttpbin, sleep_bar, 80, Allow("foo/sas")},
      {"serviceAccounts: other ns", sas, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"serviceAccounts: bare name is the policy's namespace", sa_allow_bare, kHttpbin, sleep_foo, 80,
       Allow("foo/sa-allow")},
      {"serviceAccounts: bare name, other namespace", sa_allow_bare, kHttpbin, sleep_bar, 80, kDefaultDeny},
      {"serviceAccounts: bare name in a DENY", sa_deny_bare, kHttpbin, sleep_foo, 80, Deny("foo/sa-deny")},
      {"serviceAccounts: bare name in a DENY, other namespace", sa_deny_bare, kHttpbin, sleep_bar, 80, kNoAllow},
      {"notServiceAccounts: bare name excludes it", sa_not_bare, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"notServiceAccounts: bare name, other namespace", sa_not_bare, kHttpbin, sleep_bar, 80, Allow("foo/sa-not")},
      {"notServiceAccounts: no identity passes", sa_not_bare, kHttpbin, unknown, 80, Allow("foo/sa-not")},
      {"when source.serviceAccount: bare name", sa_when_bare, kHttpbin, sleep_foo, 80, Deny("foo/sa-when")},
      {"when source.serviceAccount: other namespace", sa_when_bare, kHttpbin, sleep_bar, 80, kNoAllow},
      {"when source.serviceAccount notValues", sa_when_not, kHttpbin, sleep_bar, 80, kDefaultDeny},
      {"when source.serviceAccount notValues: unknown passes", sa_when_not, kHttpbin, unknown, 80,
       Allow("foo/sa-when-not")},
      {"root namespace: bare name is istio-system's", sa_root_bare, kHttpbin, sleep_foo, 80, kNoAllow},
      {"when source.trustDomain", trust_domain, kHttpbin, sleep_bar, 80, Allow("foo/td")},
      {"when source.trustDomain: no identity", trust_domain, kHttpbin, unknown, 80, kDefaultDeny},
      {"when source.trustDomain: another", other_trust_domain, kHttpbin, sleep_foo, 80, kDefaultDeny},
      {"AUDIT and CUSTOM are ignored", audit_custom, kHttpbin, sleep_foo, 80, kNoPolicy},
      {"targetRefs bind to a waypoint, not here", targeted, kHttpbin, sleep_foo, 80, kNoPolicy},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto policies = row.yaml.empty() ? std::vector<Policy>{} : Policies(row.yaml);
    Decision got = Evaluate(policies, row.dst, row.src, row.port);
    EXPECT_EQ(got, row.want) << "got " << got.ToString() << ", want " << row.want.ToString();
  }
}

TEST(AuthzSemantics, StringMatch) {
  EXPECT_TRUE(StringMatches("*", "x"));
  EXPECT_FALSE(StringMatches("*", ""));
  EXPECT_TRUE(StringMatches("cluster.local/ns/foo/*", "cluster.local/ns/foo/sa/x"));
  EXPECT_FALSE(StringMatches("cluster.local/ns/foo/*", "cluster.local/ns/bar/sa/x"));
  EXPECT_TRUE(StringMatches("*/sa/x", "cluster.local/ns/foo/sa/x"));
  EXPECT_FALSE(StringMatches("*/sa/x", "cluster.local/ns/foo/sa/xy"));
  EXPECT_TRUE(StringMatches("exact", "exact"));
  EXPECT_FALSE(StringMatches("exact", "exact2"));
}

}  // namespace
}  // namespace weft::authz
