// `weftctl flows` against a real tc_policy datapath (tests/cli/tc_topology.hpp):
// the aggregates equal exactly the connections the clients made, per verdict,
// reason and AuthorizationPolicy, also after the ring buffer overflowed; the
// filters select what they say; --follow prints the events as they arrive and
// shows the lost-event counter. Label `kernel`, RUN_SERIAL: needs root + BPF;
// skips without them, fails instead under CI=true. Everything is removed on
// every path, Ctrl-C included.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sstream>

#include "tests/cli/tc_topology.hpp"

namespace weft::clitest {
namespace {

using namespace std::chrono_literals;

class FlowsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = ktest::MissingPrerequisite();
    if (why.empty() && !fs::exists(WEFT_WEFTCTL)) why = std::string("no weftctl at ") + WEFT_WEFTCTL;
    if (!why.empty()) {
      if (testing::InCi()) FAIL() << "CI=true and the flows cli tests cannot run: " << why;
      GTEST_SKIP() << "flows cli test skipped: " << why;
    }
    topo_ = std::make_unique<Topology>();
    std::string err = topo_->Build("flowcli");
    ASSERT_EQ(err, "") << "topology";
    acceptor_ = std::make_unique<Acceptor>(Server().ns->path(), kServerIp, std::vector<uint16_t>{8080, 8081, 9090, 7070});
    ASSERT_EQ(acceptor_->listening(), 4u);
  }
  void TearDown() override {
    acceptor_.reset();
    if (topo_) {
      topo_->Destroy();
      EXPECT_TRUE(topo_->Clean()) << "left behind: " << topo_->pin_root_ << " or " << topo_->lab_dir_;
    }
  }

  Topology::PodNs& Client() { return topo_->pods_[0]; }
  Topology::PodNs& Server() { return topo_->pods_[1]; }
  Topology::PodNs& Stranger() { return topo_->pods_[2]; }

  CmdResult Flows(std::vector<std::string> args) {
    args.insert(args.begin(), {WEFT_WEFTCTL, "flows"});
    for (const auto& a : {"--lab", topo_->lab_.c_str(), "--state-dir", topo_->state_dir_.c_str()}) args.push_back(a);
    return RunCapture(args, topo_->tmp_);
  }
  Json FlowsJson(std::vector<std::string> args = {}) {
    args.push_back("-o");
    args.push_back("json");
    CmdResult r = Flows(args);
    EXPECT_EQ(r.code, 0) << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out << r.err;
    return j.is_object() ? j : Json::object();
  }

  // n connects from `from` to server:port; the number of successes.
  int Connect(Topology::PodNs& from, uint16_t port, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += ConnectFrom(from.ns->path(), kServerIp, port) == 0;
    return ok;
  }

  // Connections of the aggregate (src, dst, port, verdict) in a `flows -o json`
  // answer; -1 if absent. Also checks the names when found.
  static Json Find(const Json& j, uint32_t src, uint32_t dst, uint16_t port, const std::string& verdict) {
    for (const auto& f : j["flows"])
      if (f["source"]["id"] == src && f["destination"]["id"] == dst && f["dport"] == port && f["verdict"] == verdict)
        return f;
    return Json();
  }

  std::unique_ptr<Topology> topo_;
  std::unique_ptr<Acceptor> acceptor_;
};

TEST_F(FlowsCliTest, AggregatesCountExactlyWhatClientsMadeWithNames) {
  ASSERT_EQ(Connect(Client(), 8080, 200), 200);
  ASSERT_EQ(Connect(Client(), 9090, 50), 0);
  ASSERT_EQ(Connect(Client(), 8081, 30), 0);
  ASSERT_EQ(Connect(Stranger(), 8080, 20), 0);
  ASSERT_EQ(Connect(Stranger(), 7070, 10), 10);

  Json j = FlowsJson();
  Json allowed = Find(j, kClientId, kServerId, 8080, "allow");
  ASSERT_FALSE(allowed.is_null()) << j.dump(2);
  EXPECT_EQ(allowed["connections"], 200);
  EXPECT_GE(allowed["packets"].get<uint64_t>(), 200u * 3) << "SYN, SYN-ACK, ACK at least, both directions counted";
  EXPECT_EQ(allowed["policy"]["name"], "demo/allow-client-8080");
  EXPECT_EQ(allowed["reason"], "none");
  EXPECT_EQ(allowed["source"]["spiffe_id"], "spiffe://cluster.local/ns/demo/sa/client");
  EXPECT_EQ(allowed["source"]["pods"], Json{"demo/client-0"});
  EXPECT_EQ(allowed["destination"]["pods"], Json{"demo/server-0"});
  EXPECT_EQ(allowed["proto"], "tcp");
  EXPECT_EQ(allowed["node"], kNode);

  Json denied = Find(j, kClientId, kServerId, 9090, "deny");
  ASSERT_FALSE(denied.is_null()) << j.dump(2);
  EXPECT_EQ(denied["connections"], 50);
  EXPECT_EQ(denied["reason"], "policy_denied");
  EXPECT_EQ(denied["policy"]["name"], "demo/deny-9090");
  EXPECT_EQ(denied["policy"]["action"], "DENY");

  Json dflt = Find(j, kClientId, kServerId, 8081, "deny");
  ASSERT_FALSE(dflt.is_null()) << j.dump(2);
  EXPECT_EQ(dflt["connections"], 30);
  EXPECT_EQ(dflt["reason"], "policy_default");
  EXPECT_TRUE(dflt["policy"]["name"].is_null());

  Json unknown = Find(j, WEFT_IDENTITY_UNKNOWN, kServerId, 8080, "deny");
  ASSERT_FALSE(unknown.is_null()) << j.dump(2);
  EXPECT_EQ(unknown["connections"], 20);
  EXPECT_EQ(unknown["reason"], "no_identity");
  EXPECT_EQ(unknown["source"]["reserved"], "unknown");

  Json any = Find(j, WEFT_IDENTITY_UNKNOWN, kServerId, 7070, "allow");
  ASSERT_FALSE(any.is_null()) << j.dump(2);
  EXPECT_EQ(any["connections"], 10);
  EXPECT_EQ(any["policy"]["name"], "demo/allow-any-7070");
  EXPECT_EQ(j["flows"].size(), 5u) << j.dump(2);

  // Filters: each selects exactly what it says.
  auto conns = [](const Json& r) {
    uint64_t n = 0;
    for (const auto& f : r["flows"]) n += f["connections"].get<uint64_t>();
    return n;
  };
  EXPECT_EQ(conns(FlowsJson({"--from", "client-0"})), 280u);
  EXPECT_EQ(conns(FlowsJson({"--from", "demo/client"})), 280u) << "by service account";
  EXPECT_EQ(conns(FlowsJson({"--from", "spiffe://cluster.local/ns/demo/sa/client", "--verdict", "denied"})), 80u);
  EXPECT_EQ(conns(FlowsJson({"--verdict", "allowed"})), 210u);
  EXPECT_EQ(conns(FlowsJson({"--to", "demo/server-0", "--verdict", "denied"})), 100u);
  EXPECT_EQ(conns(FlowsJson({"--to", "web"})), 200u + 20u)
      << "service web = its backend server:8080: the client's 200 and the stranger's 20 denied";
  EXPECT_EQ(conns(FlowsJson({"--to", "denied"})), 50u) << "service denied: backend server:9090";
  EXPECT_EQ(conns(FlowsJson({"--from", "stranger-0"})), 30u)
      << "the stranger's identity is `unknown`: aggregates are per identity, so every unknown source";

  // The table: one line per aggregate with names.
  CmdResult t = Flows({});
  ASSERT_EQ(t.code, 0) << t.err;
  std::printf("%s", t.out.c_str());  // what a user sees, in the test log
  EXPECT_NE(t.out.find("demo/deny-9090"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("spiffe://cluster.local/ns/demo/sa/client"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("no_identity"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("lost"), std::string::npos) << "the event counters are shown: " << t.out;

  // Unknown names: exit 1 with close names.
  CmdResult bad = Flows({"--from", "client-O"});
  EXPECT_EQ(bad.code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("demo/client-0"), std::string::npos) << bad.err;
  // Missing pin root: exit 2.
  CmdResult missing = RunCapture({WEFT_WEFTCTL, "flows", "--pin-root", topo_->pin_root_ + "-nope"}, topo_->tmp_);
  EXPECT_EQ(missing.code, 2) << missing.err;
}

// Runs `weftctl flows --follow ...` in the background; Wait() returns its output.
class Follower {
 public:
  Follower(const std::vector<std::string>& argv, const std::string& tmp) : out_(tmp + "/follow.out") {
    pid_ = fork();
    if (pid_ == 0) {
      int o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      int e = open((tmp + "/follow.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (o < 0 || e < 0) _exit(127);
      dup2(o, 1), dup2(e, 2);
      alarm(60);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    err_ = tmp + "/follow.err";
  }
  ~Follower() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Until the output contains `s` (or timeout).
  bool WaitFor(const std::string& s, std::chrono::milliseconds timeout = 10s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (testing::ReadFile(out_).find(s) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  void Signal(int sig) { kill(pid_, sig); }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string Out() const { return testing::ReadFile(out_); }
  std::string Err() const { return testing::ReadFile(err_); }

 private:
  pid_t pid_ = -1;
  std::string out_, err_;
};

std::vector<Json> Lines(const std::string& s) {
  std::vector<Json> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(j);
  }
  return out;
}

TEST_F(FlowsCliTest, FollowPrintsEventsAsTheyArriveWithFilters) {
  // Backlog from before the follower: skipped by --since 0s.
  ASSERT_EQ(Connect(Client(), 8080, 5), 5);
  std::vector<std::string> argv = {WEFT_WEFTCTL, "flows", "--follow", "-o", "json", "--since", "0s",
                                   "--count", "7", "--duration", "30s", "--from", "client-0",
                                   "--lab", topo_->lab_, "--state-dir", topo_->state_dir_};
  Follower f(argv, topo_->tmp_);
  ASSERT_TRUE(f.WaitFor("\"when\":\"start\"")) << f.Out() << f.Err();
  ASSERT_EQ(Connect(Stranger(), 7070, 3), 3);  // filtered out (--from client-0)
  ASSERT_EQ(Connect(Client(), 9090, 2), 0);
  ASSERT_EQ(Connect(Client(), 8080, 5), 5);
  EXPECT_EQ(f.Wait(), 0) << f.Err();
  std::vector<Json> lines = Lines(f.Out());
  int flows = 0, denied = 0, lost_records = 0;
  Json summary;
  for (const auto& l : lines) {
    if (l["type"] == "flow") {
      ++flows;
      EXPECT_EQ(l["source"]["pod"], "demo/client-0") << l.dump();
      EXPECT_EQ(l["source"]["ip"], kClientIp);
      EXPECT_EQ(l["destination"]["pod"], "demo/server-0");
      EXPECT_EQ(l["direction"], "ingress");
      if (l["verdict"] == "deny") {
        ++denied;
        EXPECT_EQ(l["reason"], "policy_denied");
        EXPECT_EQ(l["policy"]["name"], "demo/deny-9090");
        EXPECT_EQ(l["destination"]["port"], 9090);
      } else {
        EXPECT_EQ(l["policy"]["name"], "demo/allow-client-8080");
      }
    } else if (l["type"] == "lost") {
      ++lost_records;
      EXPECT_EQ(l["lost_total"], 0) << "nothing overflowed here";
    } else if (l["type"] == "summary") {
      summary = l;
    }
  }
  EXPECT_EQ(flows, 7) << f.Out();
  EXPECT_EQ(denied, 2);
  EXPECT_EQ(lost_records, 2) << "start and exit";
  EXPECT_EQ(summary["events"], 7) << f.Out();

  // SIGINT stops a follower cleanly, with the exit report.
  Follower g({WEFT_WEFTCTL, "flows", "--follow", "--lab", topo_->lab_, "--state-dir", topo_->state_dir_},
             topo_->tmp_);
  ASSERT_TRUE(g.WaitFor("# start")) << g.Out() << g.Err();
  g.Signal(SIGINT);
  EXPECT_EQ(g.Wait(), 0) << g.Err();
  EXPECT_NE(g.Out().find("# exit: node n1: lost events 0"), std::string::npos) << g.Out();
}

TEST_F(FlowsCliTest, RingBufferOverflowAggregatesStayExactAndLossIsShown) {
  // Nobody consumes: 256 KiB of 72-byte records hold ~3,640 events.
  constexpr int kConns = 5000;
  ASSERT_EQ(Connect(Client(), 8080, kConns), kConns);
  ASSERT_EQ(Connect(Client(), 9090, 100), 0);

  Json j = FlowsJson();
  Json allowed = Find(j, kClientId, kServerId, 8080, "allow");
  ASSERT_FALSE(allowed.is_null()) << j.dump(2);
  EXPECT_EQ(allowed["connections"], kConns);
  Json denied = Find(j, kClientId, kServerId, 9090, "deny");
  ASSERT_FALSE(denied.is_null());
  EXPECT_EQ(denied["connections"], 100);
  uint64_t sent = j["events"][kNode]["sent"], lost = j["events"][kNode]["lost"];
  EXPECT_GT(lost, 0u) << "the ring buffer must have overflowed";
  EXPECT_EQ(sent + lost, static_cast<uint64_t>(kConns + 100)) << "one event per new flow or drop, none unaccounted";

  // --follow reports the loss at start (and drains what is buffered).
  CmdResult r = Flows({"--follow", "--duration", "1s", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<Json> lines = Lines(r.out);
  ASSERT_FALSE(lines.empty()) << r.out;
  EXPECT_EQ(lines.front()["type"], "lost");
  EXPECT_EQ(lines.front()["when"], "start");
  EXPECT_EQ(lines.front()["lost_total"].get<uint64_t>(), lost);
  size_t events = 0;
  for (const auto& l : lines) events += l["type"] == "flow";
  EXPECT_EQ(events, sent) << "every event that made it into the buffer is shown";
  EXPECT_EQ(lines.back()["type"], "summary");

  // The table form says it too.
  CmdResult t = Flows({"--follow", "--duration", "200ms"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("# start: node n1: lost events " + std::to_string(lost)), std::string::npos) << t.out;

  // After the overflow, aggregates keep counting exactly.
  ASSERT_EQ(Connect(Client(), 8080, 10), 10);
  EXPECT_EQ(Find(FlowsJson(), kClientId, kServerId, 8080, "allow")["connections"], kConns + 10);
}

}  // namespace
}  // namespace weft::clitest
