// Lab tests: a 2-node lab with bookinfo and real weft-agents, driven through
// weftctl; traffic from inside pods with weft-loadgen. Each test owns a lab
// with a unique name and tears it down on every path.
#include <signal.h>
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

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kBookinfo = WEFT_BOOKINFO;
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

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
  // In the lab's state dir: `down` removes it on every path, Ctrl-C included.
  std::string out = st["state_dir"].get<std::string>() + "/loadgen.out";
  sys::SpawnOptions so;
  so.log_path = out;
  so.new_session = false;
  auto load = sys::Spawn({WEFT_WEFTCTL, "lab", "exec", "--name", lab.name(), kClient, "--", WEFT_LOADGEN, "--target",
                          "reviews:9080", "--duration", "20", "--rate", "200", "--long", "50", "--interval-ms", "10"},
                         so);
  ASSERT_TRUE(load.ok()) << load.status().message();
  struct Reap {
    pid_t pid;
    ~Reap() {
      if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) {
        kill(pid, SIGTERM);
        waitpid(pid, nullptr, 0);
      }
    }
  } reap{*load};

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

  int status = 0;
  for (auto until = Clock::now() + 60s; Clock::now() < until;) {
    if (waitpid(*load, &status, WNOHANG) == *load) {
      reap.pid = 0;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(reap.pid, 0) << "weft-loadgen did not finish in time";
  auto j = LastJson(Slurp(out));
  std::remove(out.c_str());
  ASSERT_FALSE(j.is_null()) << "no summary from weft-loadgen";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << j.dump();
  EXPECT_GT(j.value("calls", 0), 0) << j.dump();
  EXPECT_EQ(j.value("connect_failures", -1), 0) << j.dump();
  EXPECT_EQ(j.value("request_failures", -1), 0) << j.dump();
  EXPECT_EQ(j["long"].value("opened", 0), 50) << j.dump();
  EXPECT_EQ(j["long"].value("broken", -1), 0) << j.dump();
  std::printf("traffic through the agent kill: %s\n", j.dump().c_str());

  // The restarted agent adopted the pinned links instead of re-attaching.
  auto links_after = CgroupLinkIds(cgroup);
  std::string log = Slurp(agent_log);
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

}  // namespace
}  // namespace weft::labtest
