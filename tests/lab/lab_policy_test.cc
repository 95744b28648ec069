// Lab tests of identity policy (issue 4): Bookinfo in a 2-node lab with the
// real controller, agents and TC programs; AuthorizationPolicies applied with
// weftctl; traffic from inside pods with weft-loadgen; answers checked against
// Istio's expectations (EXPECTED.md) and against `weftctl trace` and
// `weftctl flows`. Each test owns a lab and tears it down on every path.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "tests/lab/lab_harness.hpp"
#include "weft/sys.hpp"

namespace weft::labtest {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kBookinfo = WEFT_BOOKINFO;
// ../../security/authz-http.yaml next to bookinfo/platform/bookinfo.yaml.
const std::string kAuthzHttp =
    fs::path(WEFT_BOOKINFO).parent_path().parent_path().parent_path().string() + "/security/authz-http.yaml";

constexpr const char* kProductpage = "productpage-v1-0";
constexpr const char* kDetails = "details-v1-0";
constexpr const char* kRatings = "ratings-v1-0";
constexpr const char* kReviews1 = "reviews-v1-0";
constexpr const char* kReviews2 = "reviews-v2-0";
constexpr const char* kReviews3 = "reviews-v3-0";

class TempYaml {
 public:
  explicit TempYaml(const std::string& text) {
    path_ = "/tmp/weft-labpolicy-" + std::to_string(getpid()) + "-" + std::to_string(n_++) + ".yaml";
    std::ofstream(path_) << text;
  }
  ~TempYaml() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int n_ = 0;
  std::string path_;
};

// The documents of authz-http.yaml whose metadata.name is in `names`, as YAML text.
std::string AuthzHttpDocs(const std::set<std::string>& names) {
  std::string out;
  for (const auto& d : YAML::LoadAllFromFile(kAuthzHttp)) {
    if (!names.count(d["metadata"]["name"].as<std::string>())) continue;
    YAML::Emitter e;
    e << d;
    out += std::string("---\n") + e.c_str() + "\n";
  }
  return out;
}

// authz-http.yaml with its L7 attributes (methods: GET) taken out: the same
// principals, as an L4 mesh can enforce them.
const char* kAuthzHttpL4 = R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]}
)";

// On top of kAuthzHttpL4: DENY by ipBlocks (one reviews pod), a mesh-wide DENY
// in the root namespace (details may not call anything on 9080), a DENY that
// notPorts excludes, and namespace rules that must not match default.
std::string MoreRules(const std::string& reviews2_ip) {
  return R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-reviews-v2-ip, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules:
  - from:
    - source: {ipBlocks: [")" + reviews2_ip + R"(/32"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-calls-nothing, namespace: istio-system}
spec:
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-details"]}
    to:
    - operation: {ports: ["9080"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-only-9080, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: DENY
  rules:
  - to:
    - operation: {notPorts: ["9080"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-not-from-default, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules:
  - from:
    - source: {notNamespaces: ["default"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-from-other-ns, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: ["other"]}
)";
}

// No case calls its own service: a pod reaching itself never leaves its
// network namespace, so no veth (and no policy) sees it.
struct Case {
  const char* from;
  const char* to;  // service:port
  bool allowed;
};

// Expected answers with kAuthzHttpL4 alone.
const std::vector<Case> kL4Cases = {
    {kProductpage, "details:9080", true},    {kProductpage, "reviews:9080", true},
    {kProductpage, "ratings:9080", false},   {kReviews3, "details:9080", false},
    {kReviews1, "ratings:9080", true},       {kReviews2, "ratings:9080", true},
    {kReviews3, "ratings:9080", true},       {kReviews1, "details:9080", false},
    {kRatings, "details:9080", false},       {kDetails, "reviews:9080", false},
    {kRatings, "reviews:9080", false},       {kDetails, "ratings:9080", false},
    {kRatings, "productpage:9080", true},    {kDetails, "productpage:9080", true},
    {kReviews1, "productpage:9080", true},   {kReviews2, "details:9080", false},
};

// Expected answers with kAuthzHttpL4 + MoreRules.
const std::vector<Case> kMoreCases = {
    {kProductpage, "details:9080", true},    {kProductpage, "reviews:9080", true},
    {kProductpage, "ratings:9080", false},   {kReviews3, "details:9080", false},
    {kReviews1, "ratings:9080", true},       {kReviews2, "ratings:9080", false},  // DENY ipBlocks beats ALLOW
    {kReviews3, "ratings:9080", true},       {kReviews1, "details:9080", false},
    {kRatings, "details:9080", false},       {kDetails, "reviews:9080", false},
    {kRatings, "productpage:9080", true},    {kDetails, "productpage:9080", false},  // root-namespace DENY
    {kReviews1, "productpage:9080", true},   {kReviews3, "productpage:9080", true},
    {kReviews2, "details:9080", false},      {kReviews2, "productpage:9080", true},
};

std::string PodIp(const nlohmann::json& st, const std::string& pod) {
  for (const auto& p : st["pods"])
    if (p["name"] == pod) return p["ip"];
  return "";
}

// Three one-connection calls: true if all succeeded, false if all failed at
// connect; anything else fails the test (a flaky answer is a bug).
struct Outcome {
  bool allowed = false;
  bool consistent = false;
  double seconds = 0;
  std::string detail;
};
Outcome Connect(Lab& lab, const std::string& from, const std::string& to) {
  auto t0 = Clock::now();
  auto j = lab.Load(from, {"--target", to, "--count", "3"});
  Outcome o;
  o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  o.detail = j.dump();
  int ok = j.value("ok", -1), cf = j.value("connect_failures", -1);
  o.allowed = ok == 3;
  o.consistent = (ok == 3 && cf == 0) || (ok == 0 && cf == 3);
  return o;
}

void ApplyAndSync(Lab& lab, const std::string& path) {
  auto ap = lab.Ctl({"apply", "-f", path});
  ASSERT_EQ(ap.rc, 0) << ap.out;
  auto synced = lab.WaitNodes("SYNCED", 2, 30);
  auto rev = synced.value("revision", 0);
  for (const auto& n : synced["nodes"]) ASSERT_EQ(n.value("acked", 0), rev) << synced.dump();
}

// The one JSON document in `out` (stdout + stderr: a warning line may come
// first): from the first line that opens an object to the last that closes it.
nlohmann::json JsonDocument(const std::string& out) {
  size_t b = out.rfind('{', 0) == 0 ? 0 : out.find("\n{");
  size_t e = out.rfind('}');
  if (b == std::string::npos || e == std::string::npos || e < b) {
    ADD_FAILURE() << "no JSON document in: " << out;
    return nlohmann::json();
  }
  auto j = nlohmann::json::parse(out.substr(b, e - b + 1), nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << "unparsable JSON in: " << out;
    return nlohmann::json();
  }
  return j;
}

nlohmann::json Trace(Lab& lab, const std::string& from, const std::string& to) {
  auto r = Weftctl({"trace", "--lab", lab.name(), "--from", from, "--to", to, "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.out;
  return JsonDocument(r.out);
}

void CheckTable(Lab& lab, const std::vector<Case>& cases, const std::string& what) {
  for (const auto& c : cases) {
    SCOPED_TRACE(what + ": " + c.from + " -> " + c.to);
    Outcome o = Connect(lab, c.from, c.to);
    ASSERT_TRUE(o.consistent) << o.detail;
    EXPECT_EQ(o.allowed, c.allowed) << o.detail;
    if (!o.allowed) {
      EXPECT_LT(o.seconds, 5.0) << "a denied connect must fail fast, not hang: " << o.detail;
    }
    auto t = Trace(lab, c.from, c.to);
    ASSERT_FALSE(t.is_null());
    EXPECT_EQ(t.value("verdict", ""), c.allowed ? "allowed" : "denied") << t.dump(2);
    EXPECT_EQ(t.value("verdict_source", ""), "kernel") << "the verdict must come from the loaded program: " << t.dump(2);
    // A denial names why (policy_denied with the policy, or policy_default).
    if (!c.allowed) {
      EXPECT_TRUE(t.contains("reason") && !t["reason"].is_null()) << t.dump(2);
    }
  }
}

// EXPECTED.md, security/authz-http.yaml: with allow-nothing only, every
// connection to a Bookinfo workload is refused or reset. With all five
// policies, their rules carry L7 attributes (methods: GET) that an L4 data
// plane cannot see: an ALLOW rule with them cannot match (ztunnel does the
// same without a waypoint), so everything stays denied. The same principals
// without the L7 attributes give EXPECTED.md's answers for every identity, and
// `weftctl trace` (run on the loaded programs) agrees with every connection.
TEST(LabPolicy, AuthzHttpAtL4AndTraceAgreesWithConnections) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto st = lab.Status();
  ASSERT_TRUE(Connect(lab, kProductpage, "details:9080").allowed) << "no policy yet: allowed";

  TempYaml nothing(AuthzHttpDocs({"allow-nothing"}));
  ApplyAndSync(lab, nothing.path());
  for (const char* from : {kProductpage, kReviews1, kRatings, kDetails})
    for (const char* to : {"details:9080", "reviews:9080", "ratings:9080", "productpage:9080"}) {
      if (std::string(from).rfind(std::string(to).substr(0, std::string(to).find(':')), 0) == 0) continue;
      SCOPED_TRACE(std::string("allow-nothing: ") + from + " -> " + to);
      Outcome o = Connect(lab, from, to);
      ASSERT_TRUE(o.consistent) << o.detail;
      EXPECT_FALSE(o.allowed) << o.detail;
      EXPECT_LT(o.seconds, 5.0) << o.detail;
    }

  ApplyAndSync(lab, kAuthzHttp);
  for (const char* to : {"details:9080", "reviews:9080", "ratings:9080"}) {
    SCOPED_TRACE(std::string("authz-http (L7 rules at L4): productpage -> ") + to);
    EXPECT_FALSE(Connect(lab, kProductpage, to).allowed);
  }

  TempYaml l4(kAuthzHttpL4);
  ApplyAndSync(lab, l4.path());
  CheckTable(lab, kL4Cases, "authz-http at L4");

  TempYaml more(MoreRules(PodIp(st, kReviews2)));
  ASSERT_FALSE(PodIp(st, kReviews2).empty());
  ApplyAndSync(lab, more.path());
  CheckTable(lab, kMoreCases, "DENY/ipBlocks/root namespace/notPorts/namespaces");

  // No backend: a service selecting nothing (added to the lab's file, so the
  // pods' hosts files name it) is refused at connect at once, and trace says so.
  std::ifstream bi(kBookinfo);
  std::stringstream with_ghost;
  with_ghost << bi.rdbuf() << "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ghost}\nspec:\n"
             << "  selector: {app: ghost}\n  ports: [{name: http, port: 9080}]\n";
  TempYaml ghost(with_ghost.str());
  auto ap = lab.Apply(ghost.path());
  ASSERT_EQ(ap.rc, 0) << ap.out;
  lab.WaitNodes("SYNCED", 2, 30);
  auto t0 = Clock::now();
  auto g = lab.Load(kProductpage, {"--target", "ghost:9080", "--count", "3"});
  EXPECT_EQ(g.value("connect_failures", 0), 3) << g.dump();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 5.0) << "refused at once, not a timeout";
  auto gt = Trace(lab, kProductpage, "ghost:9080");
  EXPECT_EQ(gt.value("verdict", ""), "refused") << gt.dump(2);
}

// Sum of `connections` over `weftctl flows -o json` rows matching `pred`.
template <typename Pred>
uint64_t SumFlows(const nlohmann::json& flows, Pred pred) {
  uint64_t n = 0;
  for (const auto& r : flows["flows"])
    if (pred(r)) n += r.value("connections", 0ull);
  return n;
}

// 10,000 allowed connections and 500 denied ones: the aggregates count exactly
// that, while the ring buffer (nobody consuming it) overflows and says so.
TEST(LabPolicy, FlowCountsAreExactWhileTheRingBufferOverflows) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  TempYaml l4(kAuthzHttpL4);
  ApplyAndSync(lab, l4.path());

  auto allowed = lab.Load(kProductpage, {"--target", "details:9080", "--count", "10000"});
  ASSERT_EQ(allowed.value("ok", 0), 10000) << allowed.dump();
  auto denied = lab.Load(kRatings, {"--target", "details:9080", "--count", "500"});
  ASSERT_EQ(denied.value("connect_failures", 0), 500) << denied.dump();

  auto r = Weftctl({"flows", "--lab", lab.name(), "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.out;
  auto flows = JsonDocument(r.out);
  ASSERT_TRUE(flows.is_object()) << r.out;
  auto src_is = [](const nlohmann::json& row, const std::string& sa) {
    return row.dump().find("sa/" + sa + "\"") != std::string::npos;
  };
  auto is = [&](const nlohmann::json& row, const std::string& src_sa, bool allowed, const std::string& direction) {
    return src_is(row["source"], src_sa) && row.value("dport", 0) == 9080 && row.value("allowed", !allowed) == allowed &&
           row.value("direction", "") == direction;
  };
  // Each connection is seen once leaving the client's pod and once entering details'.
  EXPECT_EQ(SumFlows(flows, [&](const auto& row) { return is(row, "bookinfo-productpage", true, "egress"); }),
            10000u)
      << r.out;
  EXPECT_EQ(SumFlows(flows, [&](const auto& row) { return is(row, "bookinfo-productpage", true, "ingress"); }),
            10000u)
      << r.out;
  EXPECT_EQ(SumFlows(flows, [&](const auto& row) { return is(row, "bookinfo-ratings", false, "ingress"); }), 500u)
      << r.out;
  for (const auto& row : flows["flows"])
    if (src_is(row["source"], "bookinfo-ratings") && !row.value("allowed", true)) {
      EXPECT_EQ(row.value("reason", ""), "policy_default") << row.dump();
    }

  // Nobody consumed the ring buffer: it held far fewer than the 21,000 events,
  // and the loss is counted, not hidden.
  uint64_t lost = 0;
  for (const auto& [node, ev] : flows["events"].items()) lost += ev.value("lost", 0ull);
  EXPECT_GT(lost, 0u) << flows["events"].dump();
}

// kill -9 of both agents during traffic: denied flows stay denied and allowed
// ones stay up (new and long-lived connections), and nothing leaks.
TEST(LabPolicy, AgentKill9KeepsPolicyInForce) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  TempYaml l4(kAuthzHttpL4);
  ApplyAndSync(lab, l4.path());
  auto st = lab.Status();

  BackgroundLoad load(lab, kProductpage,
                      {"--target", "details:9080", "--duration", "12", "--rate", "100", "--long", "20", "--interval-ms",
                       "10"});
  ASSERT_TRUE(load.started()) << load.error();

  std::this_thread::sleep_for(3s);
  std::vector<std::string> nodes;
  for (const auto& n : st["nodes"]) {
    pid_t agent = n["agent"]["pid"];
    ASSERT_TRUE(sys::ProcessMatches(agent, "weft-agent"));
    ASSERT_EQ(kill(agent, SIGKILL), 0);
    nodes.push_back(n["name"]);
  }
  // While no agent runs: denied stays denied.
  for (int i = 0; i < 3; i++) {
    Outcome o = Connect(lab, kRatings, "details:9080");
    EXPECT_TRUE(o.consistent && !o.allowed) << "denied flow got through with the agents dead: " << o.detail;
  }
  for (const auto& n : nodes) {
    auto re = Weftctl({"lab", "restart-agent", "--name", lab.name(), n});
    ASSERT_EQ(re.rc, 0) << re.out;
  }
  for (int i = 0; i < 3; i++) {
    Outcome o = Connect(lab, kRatings, "details:9080");
    EXPECT_TRUE(o.consistent && !o.allowed) << "denied flow got through after the restart: " << o.detail;
  }

  bool exited_ok = false;
  auto j = load.Wait(60, &exited_ok);
  ASSERT_FALSE(j.is_null()) << "weft-loadgen did not finish in time or printed no summary";
  EXPECT_TRUE(exited_ok) << j.dump();
  EXPECT_GT(j.value("calls", 0), 0) << j.dump();
  EXPECT_EQ(j.value("connect_failures", -1), 0) << j.dump();
  EXPECT_EQ(j.value("request_failures", -1), 0) << j.dump();
  EXPECT_EQ(j["long"].value("opened", 0), 20) << j.dump();
  EXPECT_EQ(j["long"].value("broken", -1), 0) << j.dump();
}

}  // namespace
}  // namespace weft::labtest
