// Lab tests: a 2-node lab with bookinfo and real weft-agents, driven through
// weftctl; traffic from inside pods with weft-loadgen. Each test owns a lab
// with a unique name and tears it down on every path.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/lab/lab_harness.hpp"
#include "weft/sys.hpp"

namespace weft::labtest {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

using namespace std::chrono_literals;

const std::string kBookinfo = WEFT_BOOKINFO;
// ../networking next to bookinfo/platform/bookinfo.yaml.
const std::string kNetworking = fs::path(WEFT_BOOKINFO).parent_path().parent_path().string() + "/networking";
const std::string kDestinationRules = kNetworking + "/destination-rule-all.yaml";
const std::string kAllV1 = kNetworking + "/virtual-service-all-v1.yaml";
const std::vector<std::string> kServices = {"details", "ratings", "reviews", "productpage"};
const std::vector<std::string> kReviewsPods = {"reviews-v1-0", "reviews-v2-0", "reviews-v3-0"};
constexpr const char* kClient = "productpage-v1-0";

// A temp file holding `docs`, removed with the object.
class TempYaml {
 public:
  explicit TempYaml(const std::vector<YAML::Node>& docs) {
    path_ = "/tmp/weft-labtest-" + std::to_string(getpid()) + "-" + std::to_string(n_++) + ".yaml";
    std::ofstream out(path_);
    for (const auto& d : docs) {
      YAML::Emitter e;
      e << d;
      out << "---\n" << e.c_str() << "\n";
    }
  }
  ~TempYaml() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int n_ = 0;
  std::string path_;
};

std::vector<YAML::Node> BookinfoDocs() { return YAML::LoadAllFromFile(kBookinfo); }

YAML::Node ServiceDoc(const std::string& name, const std::map<std::string, std::string>& selector) {
  YAML::Node s;
  s["apiVersion"] = "v1";
  s["kind"] = "Service";
  s["metadata"]["name"] = name;
  s["spec"]["ports"][0]["port"] = 9080;
  s["spec"]["ports"][0]["name"] = "http";
  for (const auto& [k, v] : selector) s["spec"]["selector"][k] = v;
  return s;
}

std::string NodeOf(const nlohmann::json& st, const std::string& pod) {
  for (const auto& p : st["pods"])
    if (p["name"] == pod) return p["node"];
  return "";
}

const nlohmann::json* NodeState(const nlohmann::json& st, const std::string& node) {
  for (const auto& n : st["nodes"])
    if (n["name"] == node) return &n;
  return nullptr;
}

TEST(Lab, BadInputExitsOne) {
  auto r = Weftctl({"lab", "up", "--name", "tbad", "-f", "/nonexistent/weft.yaml"});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/weft.yaml"), std::string::npos) << r.out;
  r = Weftctl({"lab", "up", "--name", "Bad-Name", "-f", kBookinfo});
  EXPECT_EQ(r.rc, 1) << r.out;
  TempYaml bad({YAML::Load("kind: Deployment\nmetadata: {name: x}\nspec: {replicas: lots}")});
  r = Weftctl({"lab", "up", "--name", "tbad", "-f", bad.path()});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("replicas"), std::string::npos) << r.out;
  r = Weftctl({"lab", "status", "--name", "tnosuchlab"});
  EXPECT_EQ(r.rc, 1) << r.out;
}

TEST(Lab, BookinfoResolvesBalancesAndDownLeavesNothing) {
  WEFT_REQUIRE_LAB_ENV();
  auto veths_before = HostVethNames();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto st = lab.Status();
  ASSERT_TRUE(st.value("healthy", false)) << st.dump(2);

  // Every service name resolves (hosts file) and answers (socket LB).
  std::map<std::string, std::string> vip;
  for (const auto& s : st["services"]) vip[s["name"]] = s["vips"][0];
  for (const auto& svc : kServices) {
    for (const auto& name : {svc, svc + ".default", svc + ".default.svc", svc + ".default.svc.cluster.local"}) {
      auto r = lab.Exec(kClient, {"getent", "hosts", name});
      EXPECT_EQ(r.rc, 0) << name << ": " << r.out;
      EXPECT_NE(r.out.find(vip[svc]), std::string::npos) << name << " should resolve to " << vip[svc] << ": " << r.out;
    }
    auto r = lab.Exec(kClient, {"curl", "-sS", "-m", "3", "http://" + svc + ":9080/"});
    ASSERT_EQ(r.rc, 0) << "curl " << svc << ": " << r.out;
    EXPECT_EQ(LastJson(r.out).value("pod", "").rfind(svc + "-", 0), 0u) << r.out;
  }

  // reviews: 300 calls, all three pods answer.
  int rc = -1;
  auto j = lab.Load(kClient, {"--target", "reviews:9080", "--path", "/reviews/0", "--count", "300"}, &rc);
  EXPECT_EQ(rc, 0) << j.dump();
  EXPECT_EQ(j.value("ok", 0), 300) << j.dump();
  for (const auto& p : kReviewsPods) EXPECT_GT(j["pods"].value(p, 0), 0) << p << " never answered: " << j.dump();

  // down leaves nothing; a second down is fine.
  auto down = lab.Down();
  ASSERT_EQ(down.rc, 0) << down.out;
  ExpectNothingLeft(lab.name(), st, veths_before);
  auto again = lab.Down();
  EXPECT_EQ(again.rc, 0) << again.out;
}

TEST(Lab, DownWithoutStateRemovesEverything) {
  WEFT_REQUIRE_LAB_ENV();
  auto veths_before = HostVethNames();
  Lab lab;
  auto up = lab.Up(kBookinfo, 3);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto st = lab.Status();
  ASSERT_FALSE(st.is_null());
  // As if `up` had crashed before writing its state: no state file at all.
  fs::remove_all(st["state_dir"].get<std::string>());
  auto down = lab.Down();
  ASSERT_EQ(down.rc, 0) << down.out;
  ExpectNothingLeft(lab.name(), st, veths_before);
}

TEST(Lab, AgentKill9DuringTrafficLosesNothing) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto st = lab.Status();
  const std::string node = NodeOf(st, kClient);
  const nlohmann::json* ns = NodeState(st, node);
  ASSERT_NE(ns, nullptr);
  const std::string cgroup = (*ns)["cgroup"];
  const pid_t agent = (*ns)["agent"]["pid"];
  const std::string agent_log = (*ns)["agent"]["log"];
  auto links_before = CgroupLinkIds(cgroup);
  ASSERT_FALSE(links_before.empty()) << "no bpf_link on " << cgroup;

  // 20 s: 200 new connections/s + 50 long-lived connections sending every 10 ms.
  BackgroundLoad load(lab, kClient,
                      {"--target", "reviews:9080", "--duration", "20", "--rate", "200", "--long", "50", "--interval-ms",
                       "10"});
  ASSERT_TRUE(load.started()) << load.error();

  std::this_thread::sleep_for(5s);
  ASSERT_TRUE(sys::ProcessMatches(agent, "weft-agent"));
  ASSERT_EQ(kill(agent, SIGKILL), 0);
  for (auto until = Clock::now() + 5s; Alive(agent) && Clock::now() < until;) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(Alive(agent));

  // A change during the outage: a new service selecting only reviews v1.
  auto docs = BookinfoDocs();
  docs.push_back(ServiceDoc("reviewsone", {{"app", "reviews"}, {"version", "v1"}}));
  TempYaml changed(docs);
  auto ap = lab.Apply(changed.path());
  ASSERT_EQ(ap.rc, 0) << ap.out;
  auto early = lab.Exec(kClient, {"curl", "-sS", "-m", "1", "http://reviewsone:9080/"});
  EXPECT_NE(early.rc, 0) << "the new service answered while its node's agent was dead: " << early.out;

  std::this_thread::sleep_for(2s);
  auto re = Weftctl({"lab", "restart-agent", "--name", lab.name(), node});
  ASSERT_EQ(re.rc, 0) << re.out;

  bool exited_ok = false;
  auto j = load.Wait(60, &exited_ok);
  ASSERT_FALSE(j.is_null()) << "weft-loadgen did not finish in time or printed no summary";
  EXPECT_TRUE(exited_ok) << j.dump();
  EXPECT_GT(j.value("calls", 0), 0) << j.dump();
  EXPECT_EQ(j.value("connect_failures", -1), 0) << j.dump();
  EXPECT_EQ(j.value("request_failures", -1), 0) << j.dump();
  EXPECT_EQ(j["long"].value("opened", 0), 50) << j.dump();
  EXPECT_EQ(j["long"].value("broken", -1), 0) << j.dump();
  std::printf("traffic through the agent kill: %s\n", j.dump().c_str());

  // The restarted agent adopted the pinned links instead of re-attaching.
  auto links_after = CgroupLinkIds(cgroup);
  std::string log = Slurp(agent_log);
  // It joined once with its one-time token (issue 9) and reused its
  // credentials after the kill: the key never left <state>/agents/<node>/credentials.
  const fs::path node_dir = fs::path(agent_log).parent_path();
  const std::string creds = (node_dir.parent_path() / "agents" / node / "credentials").string();
  auto mode = [](const std::string& p) {
    struct stat sb {};
    return ::stat(p.c_str(), &sb) == 0 ? (sb.st_mode & 0777) : 0u;
  };
  EXPECT_EQ(mode(creds), 0700u);
  EXPECT_EQ(mode(creds + "/key.pem"), 0600u);
  EXPECT_EQ(mode((node_dir / "join-token").string()), 0600u);
  EXPECT_NE(log.find("joined controller"), std::string::npos) << log;
  EXPECT_NE(log.find("--join-token-file not needed"), std::string::npos) << "the restart joined again:\n" << log;
  EXPECT_TRUE(links_after == links_before || log.find("adopt") != std::string::npos)
      << "links changed and the log does not mention adoption:\n" << log;

  // The change written during the outage is applied after it.
  nlohmann::json one;
  for (auto until = Clock::now() + 10s; Clock::now() < until; std::this_thread::sleep_for(200ms)) {
    auto r = lab.Exec(kClient, {"curl", "-sS", "-m", "1", "http://reviewsone:9080/"});
    if (r.rc == 0) {
      one = LastJson(r.out);
      break;
    }
  }
  ASSERT_FALSE(one.is_null()) << "reviewsone never answered after the restart";
  auto k = lab.Load(kClient, {"--target", "reviewsone:9080", "--count", "30"});
  EXPECT_EQ(k.value("ok", 0), 30) << k.dump();
  EXPECT_EQ(k["pods"].value("reviews-v1-0", 0), 30) << k.dump();
}

TEST(Lab, RemovedBackendGetsNoNewConnections) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto j = lab.Load(kClient, {"--target", "reviews:9080", "--count", "150"});
  ASSERT_GT(j["pods"].value("reviews-v3-0", 0), 0) << j.dump();

  // Scale reviews-v3 to 0: its pod leaves the service table.
  auto docs = BookinfoDocs();
  for (auto& d : docs)
    if (d.IsMap() && d["kind"].as<std::string>("") == "Deployment" &&
        d["metadata"]["name"].as<std::string>("") == "reviews-v3")
      d["spec"]["replicas"] = 0;
  TempYaml changed(docs);
  auto ap = lab.Apply(changed.path());
  ASSERT_EQ(ap.rc, 0) << ap.out;

  // Wait (bounded) until the agents applied it: 50 calls in a row avoid v3.
  bool applied = false;
  for (auto until = Clock::now() + 15s; !applied && Clock::now() < until;) {
    auto w = lab.Load(kClient, {"--target", "reviews:9080", "--count", "50"});
    applied = w.value("ok", 0) == 50 && w["pods"].value("reviews-v3-0", 0) == 0;
  }
  ASSERT_TRUE(applied) << "reviews-v3-0 still gets connections 15 s after lab apply";
  auto after = lab.Load(kClient, {"--target", "reviews:9080", "--count", "300"});
  EXPECT_EQ(after.value("ok", 0), 300) << after.dump();
  EXPECT_EQ(after["pods"].value("reviews-v3-0", 0), 0) << after.dump();
  EXPECT_GT(after["pods"].value("reviews-v1-0", 0), 0) << after.dump();
  EXPECT_GT(after["pods"].value("reviews-v2-0", 0), 0) << after.dump();
  // The pod itself still runs: it is the load balancer that skips it.
  auto st = lab.Status();
  std::string v3ip;
  for (const auto& p : st["pods"])
    if (p["name"] == "reviews-v3-0") v3ip = p["ip"];
  auto direct = lab.Exec(kClient, {"curl", "-sS", "-m", "2", "http://" + v3ip + ":9080/"});
  EXPECT_EQ(direct.rc, 0) << direct.out;
}


// Bounded: `count` calls from the client until every answer comes from `pod`.
nlohmann::json WaitOnlyPod(Lab& lab, const std::string& target, const std::string& pod, int timeout_s) {
  nlohmann::json j;
  for (auto until = Clock::now() + std::chrono::seconds(timeout_s); Clock::now() < until;) {
    j = lab.Load(kClient, {"--target", target, "--count", "30"});
    if (j.value("ok", 0) == 30 && j["pods"].value(pod, 0) == 30) break;
    std::this_thread::sleep_for(200ms);
  }
  return j;
}

YAML::Node ReviewsTo(const std::string& subset) {
  return YAML::Load(
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n"
      "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: " +
      subset + "}\n");
}

// Istio's own expectation (EXPECTED.md): destination-rule-all + virtual-service-all-v1
// => every call to reviews lands on a v1 endpoint. L4 here: socket-LB picks only
// the v1 backends.
TEST(LabControlPlane, BookinfoAllV1RoutesOnlyToReviewsV1) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto ap = lab.Ctl({"apply", "-f", kDestinationRules, "-f", kAllV1});
  ASSERT_EQ(ap.rc, 0) << ap.out;
  EXPECT_NE(ap.out.find("virtualservice.networking.istio.io/reviews created"), std::string::npos) << ap.out;
  auto synced = lab.WaitNodes("SYNCED", 2, 20);
  auto rev = synced.value("revision", 0);
  for (const auto& n : synced["nodes"]) EXPECT_EQ(n.value("acked", 0), rev) << synced.dump();
  auto j = lab.Load(kClient, {"--target", "reviews:9080", "--path", "/reviews/0", "--count", "300"});
  EXPECT_EQ(j.value("ok", 0), 300) << j.dump();
  EXPECT_EQ(j["pods"].value("reviews-v1-0", 0), 300) << j.dump();
  EXPECT_EQ(j["pods"].size(), 1u) << j.dump();
  // Every VIP came from the controller: `weftctl get svc` shows the ones the hosts files use.
  auto st = lab.Status();
  auto get = lab.Ctl({"get", "svc"});
  ASSERT_EQ(get.rc, 0) << get.out;
  for (const auto& s : st["services"]) EXPECT_NE(get.out.find(s["vips"][0].get<std::string>()), std::string::npos) << get.out;
}

TEST(LabControlPlane, ControllerKill9DuringTrafficLosesNothing) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  ASSERT_EQ(lab.Ctl({"apply", "-f", kDestinationRules, "-f", kAllV1}).rc, 0);
  auto before = lab.Ctl({"get", "vs", "-A", "-o", "json"});
  ASSERT_EQ(before.rc, 0) << before.out;
  ASSERT_EQ(lab.WaitNodes("SYNCED", 2, 20)["nodes"].size(), 2u);
  auto st = lab.Status();
  const pid_t controller = st["controller"]["pid"];

  BackgroundLoad load(lab, kClient,
                      {"--target", "reviews:9080", "--duration", "12", "--rate", "200", "--long", "20", "--interval-ms",
                       "10"});
  ASSERT_TRUE(load.started()) << load.error();
  std::this_thread::sleep_for(3s);
  // kill -9, 3 s down, started again on the same data dir, socket and port.
  auto re = Weftctl({"lab", "restart-controller", "--name", lab.name(), "--kill", "--down-for", "3"});
  ASSERT_EQ(re.rc, 0) << re.out;
  EXPECT_FALSE(Alive(controller));
  bool exited_ok = false;
  auto j = load.Wait(60, &exited_ok);
  ASSERT_FALSE(j.is_null()) << "weft-loadgen did not finish in time or printed no summary";
  EXPECT_TRUE(exited_ok) << j.dump();
  EXPECT_GT(j.value("calls", 0), 0) << j.dump();
  EXPECT_EQ(j.value("connect_failures", -1), 0) << j.dump();
  EXPECT_EQ(j.value("request_failures", -1), 0) << j.dump();
  EXPECT_EQ(j["long"].value("broken", -1), 0) << j.dump();
  EXPECT_EQ(j["pods"].value("reviews-v1-0", 0), j.value("ok", -1)) << j.dump();
  std::printf("traffic through the controller kill: %s\n", j.dump().c_str());

  // The store survived: same objects, same resource versions.
  auto after = lab.Ctl({"get", "vs", "-A", "-o", "json"});
  ASSERT_EQ(after.rc, 0) << after.out;
  EXPECT_EQ(nlohmann::json::parse(after.out), nlohmann::json::parse(before.out));
  // The agents reconnected and are in sync again.
  auto synced = lab.WaitNodes("SYNCED", 2, 30);
  ASSERT_EQ(synced["nodes"].size(), 2u) << synced.dump();
  for (const auto& n : synced["nodes"]) EXPECT_EQ(n.value("state", ""), "SYNCED") << synced.dump();

  // A change after the restart reaches the kernel.
  TempYaml v3({ReviewsTo("v3")});
  auto ap = lab.Ctl({"apply", "-f", v3.path()});
  ASSERT_EQ(ap.rc, 0) << ap.out;
  EXPECT_NE(ap.out.find("virtualservice.networking.istio.io/reviews configured"), std::string::npos) << ap.out;
  auto k = WaitOnlyPod(lab, "reviews:9080", "reviews-v3-0", 15);
  EXPECT_EQ(k["pods"].value("reviews-v3-0", 0), 30) << k.dump();
  auto full = lab.Load(kClient, {"--target", "reviews:9080", "--count", "100"});
  EXPECT_EQ(full["pods"].value("reviews-v3-0", 0), 100) << full.dump();
}

TEST(LabControlPlane, NackKeepsThePreviousConfig) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo, 2, {"--agent-arg=--max-services=8"});
  ASSERT_EQ(up.rc, 0) << up.out;
  ASSERT_EQ(lab.WaitNodes("SYNCED", 2, 20)["nodes"].size(), 2u);
  auto ok = lab.Load(kClient, {"--target", "reviews:9080", "--count", "30"});
  ASSERT_EQ(ok.value("ok", 0), 30) << ok.dump();

  // 12 more services: more than the agents' service map holds.
  std::vector<YAML::Node> docs;
  for (int i = 0; i < 12; ++i) docs.push_back(ServiceDoc("extra" + std::to_string(i), {{"app", "reviews"}}));
  TempYaml many(docs);
  auto ap = lab.Ctl({"apply", "-f", many.path()});
  ASSERT_EQ(ap.rc, 0) << ap.out;  // the controller accepts it; the agents cannot program it
  auto nacked = lab.WaitNodes("NACKED", 2, 20);
  size_t n_nacked = 0;
  for (const auto& n : nacked["nodes"])
    if (n.value("state", "") == "NACKED") {
      ++n_nacked;
      EXPECT_FALSE(n.value("nack_reason", "").empty()) << nacked.dump();
    }
  EXPECT_EQ(n_nacked, 2u) << nacked.dump();
  auto table = lab.Ctl({"status"});
  EXPECT_NE(table.out.find("NACKED"), std::string::npos) << table.out;
  // The data plane kept the last good config: existing services still answer.
  auto still = lab.Load(kClient, {"--target", "reviews:9080", "--count", "50"});
  EXPECT_EQ(still.value("ok", 0), 50) << still.dump();
  auto lab_status = lab.Status();
  for (const auto& n : lab_status["nodes"]) EXPECT_EQ(n["agent"]["sync"], "NACKED") << lab_status.dump();
}

TEST(LabControlPlane, RejectedApplyChangesNothing) {
  WEFT_REQUIRE_LAB_ENV();
  Lab lab;
  auto up = lab.Up(kBookinfo);
  ASSERT_EQ(up.rc, 0) << up.out;
  auto before = lab.Ctl({"get", "svc", "-A", "-o", "json"});
  ASSERT_EQ(before.rc, 0) << before.out;
  // One good document, one bad: the whole apply is rejected (one transaction).
  std::vector<YAML::Node> docs = {ServiceDoc("fine", {{"app", "reviews"}}),
                                  YAML::Load("apiVersion: v1\nkind: Service\nmetadata: {name: broken}\n"
                                             "spec:\n  ports:\n  - port: 99999\n")};
  TempYaml bad(docs);
  auto ap = lab.Ctl({"apply", "-f", bad.path()});
  EXPECT_EQ(ap.rc, 1) << ap.out;
  EXPECT_NE(ap.out.find(bad.path() + ":"), std::string::npos) << ap.out;
  EXPECT_NE(ap.out.find("Service default/broken"), std::string::npos) << ap.out;
  auto after = lab.Ctl({"get", "svc", "-A", "-o", "json"});
  EXPECT_EQ(after.out, before.out);
  // `lab up` with a rejected file exits 1 and leaves nothing.
  Lab other;
  auto r = other.Up(bad.path());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("Service default/broken"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists("/run/weft/lab/" + other.name()));
}

}  // namespace
}  // namespace weft::labtest
