// End-to-end tests of the real weft-agent binary in file mode (--config):
// see agent_fixture.hpp for the cgroup, pins and cleanup.
#include "tests/agent/agent_fixture.hpp"

namespace weft {
namespace {

std::string ServiceYaml(const std::string& name, const std::string& vip, int port, const std::string& backend) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  clusterIP: " + vip +
         "\n  selector:\n    app: " + name + "\n  ports:\n  - port: " + std::to_string(port) +
         "\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: " + name +
         "-1\nspec:\n  address: " + backend + "\n  labels:\n    app: " + name + "\n";
}

const std::string kTwoServices = ServiceYaml("echo", "10.96.1.1", 7, "10.1.0.1") + "---\n" +
                                 ServiceYaml("web", "10.96.1.2", 80, "10.1.0.2");
const std::string kThreeServices = kTwoServices + "---\n" + ServiceYaml("db", "10.96.1.3", 5432, "10.1.0.3");

// (a) Start with two services: the pinned maps hold them, the programs are
// attached through pinned links, /metrics and /healthz answer.
TEST_F(AgentTest, StartProgramsMapsAndServesMetrics) {
  WriteConfig(kTwoServices);
  StartAgent();
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)), (std::set<std::string>{"10.96.1.1:7", "10.96.1.2:80"}));
  EXPECT_EQ(CountEntries(MapPin(WEFT_MAP_BACKENDS), sizeof(uint32_t)), 2u);
  for (auto* p : kPrograms) EXPECT_NE(IdOfPinned(LinkPin(p), true), 0u) << p;
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));

  auto m = HttpGet(port_, "/metrics");
  ASSERT_EQ(m.code, 200);
  EXPECT_EQ(MetricValue(m.body, "weft_map_entries{map=\"weft_services\"}"), 2);
  EXPECT_EQ(MetricValue(m.body, "weft_map_entries{map=\"weft_backends\"}"), 2);
  EXPECT_EQ(MetricValue(m.body, "weft_map_capacity{map=\"weft_services\"}"), WEFT_DEFAULT_MAX_SERVICES);
  EXPECT_EQ(MetricValue(m.body, "weft_config_generation"), 1);
  EXPECT_EQ(MetricValue(m.body, "weft_reconcile_total"), 1);
  EXPECT_EQ(MetricValue(m.body, "weft_agent_info{node=\"n1\",version=\"" WEFT_AGENT_VERSION "\"}"), 1);
  EXPECT_EQ(MetricValue(m.body,
                        "weft_service_connections_total{service=\"default/web\",vip=\"10.96.1.2\",port=\"80\","
                        "proto=\"tcp\"}"),
            0);
  EXPECT_EQ(MetricValue(m.body, "weft_backend_connections_total{backend=\"10.1.0.1:7\"}"), 0);
  EXPECT_EQ(MetricValue(m.body, "weft_lb_events_total{event=\"connect_rewritten\"}"), 0);
  EXPECT_NE(m.body.find("weft_reconcile_duration_seconds_count 1"), std::string::npos);

  auto h = HttpGet(port_, "/healthz");
  EXPECT_EQ(h.code, 200);
  EXPECT_EQ(h.body, "ok\n");
  EXPECT_EQ(HttpGet(port_, "/nope").code, 404);
  EXPECT_EQ(HttpRaw(port_, "GARBAGE\r\n\r\n").code, 400);
  EXPECT_EQ(HttpRaw(port_, "GET /metrics\r\n\r\n").code, 400);
  EXPECT_EQ(HttpRaw(port_, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").code, 405);

  // A change by rename-replace is picked up (inotify on the directory).
  WriteConfig(kThreeServices);
  EXPECT_TRUE(WaitFor([&] { return Metric("weft_config_generation") == 2; }));
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)).size(), 3u);
}

// (b) kill -9, change the config while the agent is down, restart: the same
// links (ids) and maps (ids) are adopted, the programs never left the cgroup,
// and the change is applied.
TEST_F(AgentTest, KillNineThenRestartAdoptsAndConverges) {
  WriteConfig(kTwoServices);
  StartAgent();
  std::vector<uint32_t> link_ids, map_ids;
  for (auto* p : kPrograms) link_ids.push_back(IdOfPinned(LinkPin(p), true));
  for (auto* m : kMaps) map_ids.push_back(IdOfPinned(MapPin(m), false));

  EXPECT_EQ(KillAgent(SIGKILL), 128 + SIGKILL);
  // The data plane outlives the agent.
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)).size(), 2u);

  WriteConfig(kThreeServices);
  StartAgent();
  std::vector<uint32_t> link_ids2, map_ids2;
  for (auto* p : kPrograms) link_ids2.push_back(IdOfPinned(LinkPin(p), true));
  for (auto* m : kMaps) map_ids2.push_back(IdOfPinned(MapPin(m), false));
  EXPECT_EQ(link_ids, link_ids2);
  EXPECT_EQ(map_ids, map_ids2);
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)),
            (std::set<std::string>{"10.96.1.1:7", "10.96.1.2:80", "10.96.1.3:5432"}));
  EXPECT_EQ(Metric("weft_map_entries{map=\"weft_services\"}"), 3);
  EXPECT_NE(ReadFile(log_).find("adopted, program replaced"), std::string::npos);
}

// (c) An invalid config is rejected with file:line:col errors, counted, and
// the maps keep the last good state.
TEST_F(AgentTest, InvalidConfigKeepsLastGoodState) {
  WriteConfig(kTwoServices);
  StartAgent();
  auto before = PinnedServices(MapPin(WEFT_MAP_SERVICES));

  // From the shared corpus when present: its first line says what to expect.
  std::string bad, expect_re;
  const std::string corpus = std::string(WEFT_TESTDATA_DIR) + "/bad-config/bad-weight.yaml";
  if (fs::exists(corpus)) {
    bad = ReadFile(corpus);
    std::smatch m;
    std::string first = bad.substr(0, bad.find('\n'));
    ASSERT_TRUE(std::regex_search(first, m, std::regex(R"(expect: [^:]+:(\d+):(\d+):)")));
    expect_re = config_ + ":" + m[1].str() + ":" + m[2].str() + ":";
  } else {
    bad = kTwoServices + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  bogus: 1\n";
    expect_re = config_ + ":";
  }
  WriteConfig(bad);
  ASSERT_TRUE(WaitFor([&] { return Metric("weft_config_errors_total") == 1; }));
  EXPECT_NE(ReadFile(log_).find(expect_re), std::string::npos) << "log lacks " << expect_re;
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)), before);
  EXPECT_EQ(Metric("weft_config_generation"), 1);
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 200);
  EXPECT_TRUE(AgentAlive());

  // Fixing the file applies again.
  WriteConfig(kThreeServices);
  EXPECT_TRUE(WaitFor([&] { return Metric("weft_config_generation") == 2; }));
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)).size(), 3u);
}

// Starting on an invalid config: not healthy, the maps keep what they hold.
TEST_F(AgentTest, InvalidConfigAtStartIsNotHealthy) {
  WriteConfig("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports: 7\n");
  StartAgent(/*expect_healthy=*/false);
  ASSERT_TRUE(WaitFor([&] { return Metric("weft_config_errors_total") == 1; }));
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 503);
  EXPECT_TRUE(WaitFor([&] { return AttachedPrograms(cgroup_) == std::size(kPrograms); }));
  WriteConfig(kTwoServices);
  EXPECT_TRUE(WaitFor([&] { return HttpGet(port_, "/healthz").code == 200; }));
}

// (d) SIGTERM exits 0 leaving the data plane; cleanup detaches and unpins
// everything; a second cleanup has nothing to do.
TEST_F(AgentTest, SigtermKeepsDataPlaneCleanupRemovesIt) {
  WriteConfig(kTwoServices);
  StartAgent();
  EXPECT_EQ(KillAgent(SIGTERM), 0);
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  for (auto* p : kPrograms) EXPECT_TRUE(fs::exists(LinkPin(p))) << p;

  std::string out;
  auto rc = sys::RunCommand({WEFT_AGENT_BIN, "cleanup", "--node", kNode, "--pin-root", pin_root_}, &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << out;
  EXPECT_FALSE(fs::exists(NodeDir())) << out;
  EXPECT_EQ(AttachedPrograms(cgroup_), 0u);
  std::string bpftool;
  auto brc = sys::RunCommand({"bpftool", "cgroup", "show", cgroup_}, &bpftool);
  if (brc.ok() && *brc == 0) {
    EXPECT_EQ(bpftool.find("weft_"), std::string::npos) << bpftool;
  }

  rc = sys::RunCommand({WEFT_AGENT_BIN, "cleanup", "--node", kNode, "--pin-root", pin_root_}, &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << out;
  EXPECT_NE(out.find("nothing to do"), std::string::npos) << out;
}

// A second agent for the same node is refused, and so is cleanup under a live agent.
TEST_F(AgentTest, OneAgentPerNode) {
  WriteConfig(kTwoServices);
  StartAgent();
  std::string out;
  auto rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", kNode, "--cgroup", cgroup_, "--config", config_,
                             "--pin-root", pin_root_, "--metrics", ""},
                            &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 1);
  EXPECT_NE(out.find("another weft-agent is running"), std::string::npos) << out;
  rc = sys::RunCommand({WEFT_AGENT_BIN, "cleanup", "--node", kNode, "--pin-root", pin_root_}, &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 1) << out;
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
}

// Pinned links on another cgroup: refused before any map write, naming both.
TEST_F(AgentTest, PinnedLinksOnAnotherCgroupAreRefused) {
  WriteConfig(kTwoServices);
  StartAgent();
  EXPECT_EQ(KillAgent(SIGTERM), 0);
  std::string other = cgroup_ + "-other";
  std::snprintf(g_emergency.cgroup, sizeof(g_emergency.cgroup), "%s", other.c_str());  // the riskier one
  ASSERT_TRUE(sys::MakeCgroup(other).ok());
  WriteConfig(kThreeServices);
  std::string out;
  auto rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", kNode, "--cgroup", other, "--config", config_,
                             "--pin-root", pin_root_, "--metrics", ""},
                            &out);
  EXPECT_TRUE(sys::RemoveCgroup(other).ok());
  std::snprintf(g_emergency.cgroup, sizeof(g_emergency.cgroup), "%s", cgroup_.c_str());
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 1);
  EXPECT_NE(out.find("is attached to " + cgroup_), std::string::npos) << out;
  EXPECT_NE(out.find(other), std::string::npos) << out;
  EXPECT_EQ(PinnedServices(MapPin(WEFT_MAP_SERVICES)).size(), 2u);  // untouched
}

// Idle connections to the metrics port do not delay /healthz (before: one
// connection at a time, each given 2 s to send its request: 18 idle ones made
// /healthz answer after ~35 s, and this client's 2 s read timeout fails), and
// the server closes each of them after its deadline.
TEST_F(AgentTest, IdleMetricsConnectionsDoNotDelayHealthz) {
  WriteConfig(kTwoServices);
  StartAgent();
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 18; ++i) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    if (i % 2) ASSERT_EQ(send(fd.get(), "GET /metr", 9, MSG_NOSIGNAL), 9);  // half a request line
    idle.push_back(std::move(fd));
  }
  auto h = HttpGet(port_, "/healthz");  // 2 s receive timeout
  EXPECT_EQ(h.code, 200) << "/healthz did not answer while 18 connections were idle";
  EXPECT_EQ(HttpGet(port_, "/metrics").code, 200);
  // Each idle connection is closed by the server after its deadline: end of
  // stream, after a 408 if it had sent part of a request.
  for (size_t i = 0; i < idle.size(); ++i) {
    timeval tv{10, 0};
    setsockopt(idle[i].get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = recv(idle[i].get(), buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(n, 0) << "idle connection " << i << " was not closed: " << std::strerror(errno);
    if (i % 2) EXPECT_EQ(got.rfind("HTTP/1.1 408 ", 0), 0u) << got;
    else EXPECT_EQ(got, "");
  }
}

}  // namespace
}  // namespace weft
