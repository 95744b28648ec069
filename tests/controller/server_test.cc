// weft-controller in process: Admin over gRPC (real parser), the
// ConfigDiscovery stream protocol (real compiler), a 1,000-agent fan-out and
// a restart on the same data dir.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "controller/compiler.hpp"
#include "controller/server.hpp"
#include "test_util.hpp"
#include "tests/support/tls_util.hpp"
#include "weft/transport.hpp"
#include "weft/v1/admin.grpc.pb.h"
#include "weft/v1/config.grpc.pb.h"

namespace weft::controller {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;
using testing::TempDir;
namespace v1 = weft::v1;

std::string ServiceYaml(const std::string& name, int port = 9080, const std::string& extra_spec = "") {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\n  namespace: default\nspec:\n  selector:\n    app: " + name + "\n  ports:\n  - name: http\n    port: " +
         std::to_string(port) + "\n" + extra_spec;
}


class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::warn); }
  void Start() {
    ServerOptions o;
    o.data_dir = dir_.path() + "/data";
    o.listen = "127.0.0.1:0";
    o.admin_socket = dir_.path() + "/run/controller.sock";
    auto s = ControllerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
    // Admin over TCP: an admin certificate from the controller's CA.
    auto& ca = server_->ca();
    auto admin = weft::testing::IdentityFromCsr(
        [&](const std::string& csr) { return ca.IssueAdmin("test", csr, std::chrono::hours(1)); }, ca.Bundle());
    ASSERT_TRUE(admin.ok()) << admin.status().message();
    transport::ClientTls tls;
    tls.certs = transport::StaticCertificates(*admin);
    tls.server_spiffe_id = pki::ControllerId(ca.trust_domain());
    auto ch = transport::Dial(server_->tcp_target(), transport::TlsChannelCredentials(tls));
    ASSERT_TRUE(ch.ok()) << ch.status().message();
    channel_ = *ch;
    admin_ = v1::Admin::NewStub(channel_);
    node_stubs_.clear();
  }
  // ConfigDiscovery over TCP as `node`: that node's certificate (one channel per node).
  v1::ConfigDiscovery::Stub& NodeStub(const std::string& node) {
    auto& stub = node_stubs_[node];
    if (!stub) {
      auto& ca = server_->ca();
      auto id = weft::testing::IdentityFromCsr([&](const std::string& csr) { return ca.IssueNode(node, csr); },
                                               ca.Bundle());
      EXPECT_TRUE(id.ok()) << id.status().message();
      stub = v1::ConfigDiscovery::NewStub(weft::testing::TlsChannel(server_->tcp_target(), &*id, ca.Bundle(),
                                                                    pki::ControllerId(ca.trust_domain())));
    }
    return *stub;
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  grpc::Status Apply(const std::string& yaml, v1::ApplyResponse* resp = nullptr, bool dry_run = false,
                     const std::string& file = "test.yaml") {
    v1::ApplyRequest req;
    auto* f = req.add_files();
    f->set_name(file);
    f->set_content(yaml);
    req.set_dry_run(dry_run);
    v1::ApplyResponse local;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    return admin_->Apply(&ctx, req, resp ? resp : &local);
  }
  v1::StatusResponse Status() {
    v1::StatusResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(admin_->Status(&ctx, v1::StatusRequest(), &resp).ok());
    return resp;
  }
  std::optional<v1::NodeStatus> Node(const std::string& name) {
    const auto st = Status();
    for (const auto& n : st.nodes())
      if (n.node() == name) return n;
    return std::nullopt;
  }

  TempDir dir_;
  std::unique_ptr<ControllerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::map<std::string, std::unique_ptr<v1::ConfigDiscovery::Stub>> node_stubs_;
};

// A synchronous fake agent: one stream, blocking reads with a deadline.
class SyncAgent {
 public:
  SyncAgent(v1::ConfigDiscovery::Stub& stub, const std::string& node) {
    ctx_.set_deadline(std::chrono::system_clock::now() + 60s);
    stream_ = stub.Stream(&ctx_);
    v1::AgentMessage m;
    m.mutable_hello()->set_node(node);
    m.mutable_hello()->set_agent_version("test-0.1");
    stream_->Write(m);
  }
  v1::ControllerMessage Read() {
    v1::ControllerMessage m;
    EXPECT_TRUE(stream_->Read(&m));
    return m;
  }
  void Ack(const v1::ControllerMessage& m) {
    v1::AgentMessage a;
    a.mutable_ack()->set_version(m.version());
    a.mutable_ack()->set_nonce(m.nonce());
    stream_->Write(a);
  }
  void Nack(const v1::ControllerMessage& m, const std::string& error) {
    v1::AgentMessage a;
    a.mutable_nack()->set_version(m.version());
    a.mutable_nack()->set_nonce(m.nonce());
    a.mutable_nack()->set_error(error);
    stream_->Write(a);
  }
  grpc::Status Close() {
    stream_->WritesDone();
    return stream_->Finish();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream_;
};

// A line of a unified diff starting with `sign` that contains `text`.
bool DiffHasLine(const std::string& diff, char sign, const std::string& text) {
  std::istringstream in(diff);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == sign && line.rfind("---", 0) != 0 && line.rfind("+++", 0) != 0 &&
        line.find(text) != std::string::npos)
      return true;
  return false;
}

bool HasService(const v1::NodeConfig& c, const std::string& name) {
  for (const auto& s : c.services())
    if (s.name() == name) return true;
  return false;
}

// ---- Admin ----

TEST_F(ControllerTest, ApplyReportsActionsAndAllocatesVips) {
  Start();
  v1::ApplyResponse r;
  ASSERT_TRUE(Apply(ServiceYaml("reviews") + "---\n" + ServiceYaml("ratings"), &r).ok());
  EXPECT_EQ(r.revision(), 1u);
  ASSERT_EQ(r.changes_size(), 2);
  EXPECT_EQ(r.changes(0).action(), "created");
  EXPECT_EQ(r.changes(0).ref().kind(), "Service");
  EXPECT_EQ(r.changes(0).resource_version(), 1u);

  v1::ApplyResponse again;
  ASSERT_TRUE(Apply(ServiceYaml("reviews") + "---\n" + ServiceYaml("ratings", 9081), &again).ok());
  EXPECT_EQ(again.revision(), 2u);
  EXPECT_EQ(again.changes(0).action(), "unchanged");
  EXPECT_EQ(again.changes(0).resource_version(), 1u);
  EXPECT_EQ(again.changes(1).action(), "configured");

  v1::GetRequest g;
  g.set_kind("svc");
  g.set_name("reviews");
  v1::GetResponse gr;
  grpc::ClientContext ctx;
  ASSERT_TRUE(admin_->Get(&ctx, g, &gr).ok());
  ASSERT_EQ(gr.resources_size(), 1);
  EXPECT_NE(gr.resources(0).json().find("\"clusterIP\":\"10.96.0.1\""), std::string::npos) << gr.resources(0).json();
  EXPECT_NE(gr.resources(0).yaml().find("clusterIP: 10.96.0.1"), std::string::npos) << gr.resources(0).yaml();
  EXPECT_EQ(gr.resources(0).resource_version(), 1u);
}

TEST_F(ControllerTest, InvalidApplyChangesNothingAndListsEveryError) {
  Start();
  ASSERT_TRUE(Apply(ServiceYaml("reviews")).ok());
  std::string bad = ServiceYaml("fine") + "---\n" + ServiceYaml("broken", 99999) + "---\n" +
                    ServiceYaml("broken2", 0);
  v1::ApplyResponse r;
  auto st = Apply(bad, &r, false, "bad.yaml");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("bad.yaml:"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("broken"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("broken2"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find('\n'), std::string::npos) << "one error per line: " << st.error_message();
  EXPECT_EQ(Status().revision(), 1u);
  v1::GetRequest g;
  g.set_kind("services");
  v1::GetResponse gr;
  grpc::ClientContext ctx;
  ASSERT_TRUE(admin_->Get(&ctx, g, &gr).ok());
  EXPECT_EQ(gr.resources_size(), 1);
}

TEST_F(ControllerTest, DryRunDiffGetDeleteAndErrors) {
  Start();
  v1::ApplyResponse dry;
  ASSERT_TRUE(Apply(ServiceYaml("reviews"), &dry, /*dry_run=*/true).ok());
  EXPECT_EQ(dry.changes(0).action(), "created");
  EXPECT_EQ(Status().revision(), 0u);
  ASSERT_TRUE(Apply(ServiceYaml("reviews")).ok());

  // Diff: unchanged, update with a unified diff, create.
  v1::DiffRequest dq;
  auto* f = dq.add_files();
  f->set_name("d.yaml");
  f->set_content(ServiceYaml("reviews", 9090) + "---\n" + ServiceYaml("details"));
  v1::DiffResponse dr;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->Diff(&ctx, dq, &dr).ok());
  }
  ASSERT_EQ(dr.diffs_size(), 2);
  EXPECT_EQ(dr.diffs(0).action(), "update");
  EXPECT_TRUE(DiffHasLine(dr.diffs(0).diff(), '-', "port: 9080")) << dr.diffs(0).diff();
  EXPECT_TRUE(DiffHasLine(dr.diffs(0).diff(), '+', "port: 9090")) << dr.diffs(0).diff();
  EXPECT_EQ(dr.diffs(1).action(), "create");
  EXPECT_TRUE(DiffHasLine(dr.diffs(1).diff(), '+', "clusterIP: 10.96.0.2")) << dr.diffs(1).diff();

  // Unknown kind lists the known ones.
  {
    v1::GetRequest g;
    g.set_kind("frob");
    v1::GetResponse gr;
    grpc::ClientContext ctx;
    auto st = admin_->Get(&ctx, g, &gr);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("VirtualService"), std::string::npos) << st.error_message();
  }
  // Delete of an absent resource: NOT_FOUND naming it, nothing deleted.
  {
    v1::DeleteRequest dq2;
    auto* a = dq2.add_refs();
    a->set_kind("svc");
    a->set_name("reviews");
    auto* b = dq2.add_refs();
    b->set_kind("svc");
    b->set_name("ghost");
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    auto st = admin_->Delete(&ctx, dq2, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(st.error_message().find("Service default/ghost"), std::string::npos) << st.error_message();
    EXPECT_EQ(Status().revision(), 1u);
  }
  {
    v1::DeleteRequest dq3;
    auto* fl = dq3.add_files();
    fl->set_name("x.yaml");
    fl->set_content(ServiceYaml("reviews"));
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->Delete(&ctx, dq3, &resp).ok());
    EXPECT_EQ(resp.revision(), 2u);
    ASSERT_EQ(resp.changes_size(), 1);
    EXPECT_EQ(resp.changes(0).action(), "deleted");
  }
}

TEST_F(ControllerTest, ApplyReturnsAnalyzerWarnings) {
  Start();
  const std::string vs =
      "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: reviews\n"
      "  namespace: default\nspec:\n  hosts:\n  - reviews\n  http:\n  - route:\n    - destination:\n"
      "        host: nowhere\n";
  v1::ApplyResponse r;
  auto st = Apply(ServiceYaml("reviews") + "---\n" + vs, &r, false, "vs.yaml");
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(r.warnings_size(), 1);
  EXPECT_EQ(r.warnings(0).severity(), v1::WARNING);
  EXPECT_EQ(r.warnings(0).code(), "ReferencedResourceNotFound");
  EXPECT_NE(r.warnings(0).message().find("nowhere"), std::string::npos) << r.warnings(0).message();
  // Applying the missing Service later clears the warning (stored ∪ applied).
  v1::ApplyResponse r2;
  ASSERT_TRUE(Apply(ServiceYaml("nowhere"), &r2).ok());
  EXPECT_EQ(r2.warnings_size(), 0);
}

// The warnings are reused while no analyzed kind changes (an endpoint update
// costs no whole-store analysis), and recomputed when one does: by an apply,
// a dry run that overlays one, or a delete.
TEST_F(ControllerTest, WarningsFollowTheAnalyzedKindsOnly) {
  Start();
  const std::string vs =
      "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: reviews\n"
      "  namespace: default\nspec:\n  hosts:\n  - reviews\n  http:\n  - route:\n    - destination:\n"
      "        host: nowhere\n";
  const std::string we =
      "apiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata:\n  name: r1\n  namespace: default\n"
      "spec:\n  address: 10.0.0.1\n  labels:\n    app: reviews\n";
  auto warnings = [&](const std::string& yaml, bool dry_run = false) {
    v1::ApplyResponse r;
    auto st = Apply(yaml, &r, dry_run);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return r.warnings_size();
  };
  EXPECT_EQ(warnings(ServiceYaml("reviews") + "---\n" + vs), 1);
  EXPECT_EQ(warnings(we), 1) << "a WorkloadEntry apply still reports the store's warnings";
  EXPECT_EQ(warnings(ServiceYaml("nowhere"), /*dry_run=*/true), 0) << "the dry run overlays the Service";
  EXPECT_EQ(warnings(we), 1) << "the dry run changed nothing";
  EXPECT_EQ(warnings(ServiceYaml("nowhere")), 0);
  EXPECT_EQ(warnings(we), 0);
  {
    v1::DeleteRequest dq;
    auto* ref = dq.add_refs();
    ref->set_kind("Service");
    ref->set_namespace_("default");
    ref->set_name("nowhere");
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->Delete(&ctx, dq, &resp).ok());
  }
  EXPECT_EQ(warnings(we), 1) << "the delete of the Service brings the warning back";
}

TEST_F(ControllerTest, AdminAnswersOnTheUnixSocket) {
  Start();
  auto ch = transport::Dial("unix:" + dir_.path() + "/run/controller.sock");
  ASSERT_TRUE(ch.ok());
  auto stub = v1::Admin::NewStub(*ch);
  v1::StatusResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  ASSERT_TRUE(stub->Status(&ctx, v1::StatusRequest(), &resp).ok());
}

// ---- the stream protocol ----

TEST_F(ControllerTest, StreamProtocol) {
  Start();
  ASSERT_TRUE(Apply(ServiceYaml("reviews")).ok());

  SyncAgent a(NodeStub("node-a"), "node-a");
  auto snap = a.Read();
  ASSERT_TRUE(snap.has_snapshot());
  EXPECT_EQ(snap.version(), 1u);
  EXPECT_FALSE(snap.nonce().empty());
  EXPECT_TRUE(HasService(snap.snapshot(), "reviews"));
  ASSERT_TRUE(Eventually([&] { return Node("node-a") && Node("node-a")->state() == "STALE"; }));
  EXPECT_EQ(Node("node-a")->agent_version(), "test-0.1");
  a.Ack(snap);
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "SYNCED"; }));
  EXPECT_EQ(Node("node-a")->last_acked_version(), 1u);

  // Apply -> a delta to the connected node, with a new nonce.
  ASSERT_TRUE(Apply(ServiceYaml("ratings")).ok());
  auto d = a.Read();
  ASSERT_TRUE(d.has_delta());
  EXPECT_EQ(d.version(), 2u);
  EXPECT_NE(d.nonce(), snap.nonce());
  ASSERT_EQ(d.delta().upserted_services_size(), 1);
  EXPECT_EQ(d.delta().upserted_services(0).name(), "ratings");
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "STALE"; }));
  // An ACK with a stale nonce is ignored.
  a.Ack(snap);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Node("node-a")->state(), "STALE");
  EXPECT_EQ(Node("node-a")->last_acked_version(), 1u);
  a.Ack(d);
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "SYNCED"; }));
  EXPECT_EQ(Node("node-a")->last_acked_version(), 2u);
  EXPECT_EQ(Node("node-a")->last_sent_version(), 2u);

  // NACK -> NACKED with the reason; the next push makes it STALE again.
  ASSERT_TRUE(Apply(ServiceYaml("ratings", 9999)).ok());
  auto d3 = a.Read();
  EXPECT_EQ(d3.version(), 3u);
  a.Nack(d3, "write weft_services: No space left on device");
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "NACKED"; }));
  EXPECT_EQ(Node("node-a")->last_nacked_version(), 3u);
  EXPECT_EQ(Node("node-a")->nack_reason(), "write weft_services: No space left on device");
  EXPECT_EQ(Node("node-a")->last_acked_version(), 2u);

  // A delete is pushed as a removal.
  {
    v1::DeleteRequest dq;
    auto* ref = dq.add_refs();
    ref->set_kind("Service");
    ref->set_namespace_("default");
    ref->set_name("ratings");
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->Delete(&ctx, dq, &resp).ok());
  }
  auto d4 = a.Read();
  EXPECT_EQ(d4.version(), 4u);
  ASSERT_EQ(d4.delta().removed_services_size(), 1);
  EXPECT_EQ(d4.delta().removed_services(0), "default/ratings");
  a.Ack(d4);
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "SYNCED"; }));

  // Disconnect -> DISCONNECTED, still listed.
  a.Close();
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "DISCONNECTED"; }));
  EXPECT_FALSE(Node("node-a")->connected());
  EXPECT_EQ(Status().nodes_size(), 1);
}

TEST_F(ControllerTest, NewStreamOfTheSameNodeSupersedesTheOld) {
  Start();
  auto first = std::make_unique<SyncAgent>(NodeStub("node-a"), "node-a");
  auto s1 = first->Read();
  SyncAgent second(NodeStub("node-a"), "node-a");
  auto s2 = second.Read();
  EXPECT_NE(s1.nonce(), s2.nonce());
  // The old stream is ended; its end does not mark the node disconnected.
  v1::ControllerMessage m;
  auto st = first->Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  first.reset();
  second.Ack(s2);
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "SYNCED"; }));
}

// ---- restart ----

TEST_F(ControllerTest, RestartServesTheSameRevisionAndConfig) {
  Start();
  ASSERT_TRUE(Apply(ServiceYaml("reviews") + "---\n" + ServiceYaml("ratings", 9080, "  ipFamilyPolicy: PreferDualStack\n")).ok());
  ASSERT_TRUE(Apply(ServiceYaml("details")).ok());
  v1::NodeConfig before;
  {
    SyncAgent a(NodeStub("node-a"), "node-a");
    auto snap = a.Read();
    EXPECT_EQ(snap.version(), 2u);
    before = snap.snapshot();
    a.Close();
  }
  server_->Shutdown();
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/run/controller.sock"));
  Start();
  EXPECT_EQ(Status().revision(), 2u);
  SyncAgent a(NodeStub("node-a"), "node-a");
  auto snap = a.Read();
  EXPECT_EQ(snap.version(), 2u);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before, snap.snapshot()))
      << before.DebugString() << "\nvs\n" << snap.snapshot().DebugString();
  v1::ApplyResponse r;
  ASSERT_TRUE(Apply(ServiceYaml("details"), &r).ok());
  EXPECT_EQ(r.changes(0).action(), "unchanged");
  EXPECT_EQ(r.revision(), 2u);
}

// ---- fan-out: 1,000 agents ----

// A callback-API fake agent: hello, then ACK every push (the latest one when
// several arrive while an ACK is being written).
class AsyncAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  AsyncAgent(v1::ConfigDiscovery::Stub& stub, std::string node) : node_(std::move(node)) {
    stub.async()->Stream(&ctx_, this);
    hello_.mutable_hello()->set_node(node_);
    hello_.mutable_hello()->set_agent_version("fanout");
    writing_ = true;
    StartWrite(&hello_);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      std::lock_guard lock(mu_);
      seen_version_ = in_.version();
      pending_.mutable_ack()->set_version(in_.version());
      pending_.mutable_ack()->set_nonce(in_.nonce());
      has_pending_ = true;
      MaybeWriteLocked();
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) return;
    if (out_.has_ack()) acked_version_ = out_.ack().version();
    MaybeWriteLocked();
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  uint64_t acked() {
    std::lock_guard lock(mu_);
    return acked_version_;
  }
  void Cancel() { ctx_.TryCancel(); }
  void WaitDone() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  void MaybeWriteLocked() {
    if (writing_ || !has_pending_) return;
    out_ = pending_;
    has_pending_ = false;
    writing_ = true;
    StartWrite(&out_);
  }
  std::string node_;
  grpc::ClientContext ctx_;
  v1::AgentMessage hello_, out_, pending_;
  v1::ControllerMessage in_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false, has_pending_ = false, done_ = false;
  uint64_t seen_version_ = 0, acked_version_ = 0;
};

TEST_F(ControllerTest, ThousandAgentsConvergeAfterAnApply) {
  constexpr int kAgents = 1000;
  constexpr int kChannels = 20;  // 50 streams per HTTP/2 connection
  Start();
  std::string many;
  for (int i = 0; i < 50; ++i) many += (i ? "---\n" : "") + ServiceYaml("svc-" + std::to_string(i));
  ASSERT_TRUE(Apply(many).ok());

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::ConfigDiscovery::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    args.SetInt("weft.test.channel", c);
    // Many nodes on one connection: only the root-only unix socket allows
    // that (over TCP a connection is one node's, by its certificate).
    channels.push_back(grpc::CreateCustomChannel("unix:" + dir_.path() + "/run/controller.sock",
                                                 grpc::experimental::LocalCredentials(UDS), args));
    stubs.push_back(v1::ConfigDiscovery::NewStub(channels.back()));
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<AsyncAgent>> agents;
  for (int i = 0; i < kAgents; ++i)
    agents.push_back(std::make_unique<AsyncAgent>(*stubs[i % kChannels], "node-" + std::to_string(i)));
  auto all_acked = [&](uint64_t v) {
    for (auto& a : agents)
      if (a->acked() != v) return false;
    return true;
  };
  ASSERT_TRUE(Eventually([&] { return all_acked(1); }, 120s)) << "not every agent ACKed its snapshot";
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return server_->streams() == kAgents; }));

  v1::ApplyResponse r;
  ASSERT_TRUE(Apply(ServiceYaml("svc-new"), &r).ok());
  auto t2 = std::chrono::steady_clock::now();
  ASSERT_EQ(r.revision(), 2u);
  ASSERT_TRUE(Eventually([&] { return all_acked(2); }, 120s)) << "not every agent ACKed the delta";
  auto t3 = std::chrono::steady_clock::now();
  // The controller sees every node SYNCED at version 2.
  ASSERT_TRUE(Eventually([&] {
    auto st = Status();
    if (st.nodes_size() != kAgents) return false;
    for (const auto& n : st.nodes())
      if (n.state() != "SYNCED" || n.last_acked_version() != 2u) return false;
    return true;
  }));
  auto t4 = std::chrono::steady_clock::now();
  // Threads of the whole test process (controller + 1,000 client streams).
  size_t threads = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++threads;
  auto ms = [](auto a, auto b) { return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count(); };
  std::printf("fan-out: %d agents on %d connections: all snapshots ACKed in %lld ms; "
              "apply -> all %d ACKed the delta in %lld ms (apply RPC %lld ms); status all SYNCED after %lld ms; "
              "%zu threads in the process\n",
              kAgents, kChannels, static_cast<long long>(ms(t0, t1)), kAgents, static_cast<long long>(ms(t2, t3)),
              static_cast<long long>(ms(t1, t2)), static_cast<long long>(ms(t2, t4)), threads);
  RecordProperty("connect_ms", static_cast<int>(ms(t0, t1)));
  RecordProperty("fanout_ms", static_cast<int>(ms(t2, t3)));

  for (auto& a : agents) a->Cancel();
  for (auto& a : agents) a->WaitDone();
  ASSERT_TRUE(Eventually([&] { return server_->streams() == 0; }));
}

// ---- snapshots and deltas framed from a shared part and a node's part ----

config::Resource Workload(const std::string& name, const std::string& app, const std::string& addr,
                          const std::string& node, const std::string& sa = "") {
  config::Resource r;
  r.api_version = "networking.istio.io/v1beta1";
  r.key = {"WorkloadEntry", "default", name};
  nlohmann::json spec = {{"address", addr}, {"labels", {{"app", app}}}};
  if (!sa.empty()) spec["serviceAccount"] = sa;
  r.object = {{"apiVersion", r.api_version},
              {"kind", "WorkloadEntry"},
              {"metadata", {{"name", name}, {"namespace", "default"}, {"annotations", {{"weft.io/node", node}}}}},
              {"spec", spec}};
  return r;
}

config::Resource AllowFrom(const std::string& name, const std::string& app, const std::string& sa) {
  config::Resource r;
  r.api_version = "security.istio.io/v1";
  r.key = {"AuthorizationPolicy", "default", name};
  r.object = {{"apiVersion", r.api_version},
              {"kind", "AuthorizationPolicy"},
              {"metadata", {{"name", name}, {"namespace", "default"}}},
              {"spec",
               {{"selector", {{"matchLabels", {{"app", app}}}}},
                {"action", "ALLOW"},
                {"rules", {{{"from", {{{"source", {{"principals", {"cluster.local/ns/default/sa/" + sa}}}}}}}}}}}}};
  return r;
}

// ConfigHub sends Snapshot("") without local_workloads (serialized once) and
// then NodeSnapshot(node): on the wire that must parse as Snapshot(node).
// Catches a field added to Snapshot() and forgotten in the split.
TEST(SnapshotSplit, SharedPartPlusNodePartIsTheSnapshot) {
  Compiler c;
  std::vector<config::Resource> all = {
      testing::MakeService("default", "reviews", {{"selector", {{"app", "reviews"}}}, {"clusterIP", "10.96.0.10"}}),
      testing::MakeService("default", "ratings", {{"selector", {{"app", "ratings"}}}, {"clusterIP", "10.96.0.11"}}),
      Workload("reviews-1", "reviews", "10.0.0.1", "node-a", "reviews"),
      Workload("reviews-2", "reviews", "10.0.0.2", "node-b", "reviews"),
      Workload("ratings-1", "ratings", "10.0.0.3", "node-a", "ratings"),
      Workload("loose", "ratings", "10.0.0.4", ""),
      AllowFrom("ratings-from-reviews", "ratings", "reviews"),
  };
  c.Reset(all);
  v1::NodeConfig shared = c.Snapshot("");
  shared.clear_local_workloads();
  const std::string shared_bytes = shared.SerializeAsString();
  for (const char* node : {"node-a", "node-b", "node-c"}) {
    SCOPED_TRACE(node);
    v1::NodeConfig framed;
    ASSERT_TRUE(framed.ParseFromString(shared_bytes + c.NodeSnapshot(node).SerializeAsString()));
    v1::NodeConfig want = c.Snapshot(node);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equivalent(framed, want))
        << "framed:\n" << framed.DebugString() << "\nSnapshot(node):\n" << want.DebugString();
  }
  EXPECT_EQ(c.NodeSnapshot("node-a").local_workloads_size(), 2);
  EXPECT_EQ(c.NodeSnapshot("node-c").local_workloads_size(), 0);

  // Deltas: the services/tables part for node "" plus each node's workloads.
  auto changes = c.Update({Workload("reviews-3", "reviews", "10.0.0.5", "node-b", "reviews"),
                           Workload("ratings-1", "ratings", "10.0.0.3", "node-b", "ratings")},
                          {{"WorkloadEntry", "default", "reviews-1"}});
  ChangeSet shared_cs = changes, own_cs;
  shared_cs.workloads.clear();
  shared_cs.workload_nodes.clear();
  own_cs.workloads = changes.workloads;
  own_cs.workload_nodes = changes.workload_nodes;
  const std::string shared_delta = c.Delta("", shared_cs).SerializeAsString();
  for (const char* node : {"node-a", "node-b", "node-c"}) {
    SCOPED_TRACE(node);
    v1::NodeConfigDelta framed;
    ASSERT_TRUE(framed.ParseFromString(shared_delta + c.Delta(node, own_cs).SerializeAsString()));
    v1::NodeConfigDelta want = c.Delta(node, changes);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equivalent(framed, want))
        << "framed:\n" << framed.DebugString() << "\nDelta(node):\n" << want.DebugString();
  }
}

// Over the stream: every node gets all services and only its own workloads,
// in snapshots and in deltas.
TEST_F(ControllerTest, NodesGetSharedServicesAndTheirOwnWorkloads) {
  Start();
  auto we = [](const std::string& name, const std::string& addr, const std::string& node) {
    return "apiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata:\n  name: " + name +
           "\n  namespace: default\n  annotations:\n    weft.io/node: " + node + "\nspec:\n  address: " + addr +
           "\n  labels:\n    app: reviews\n";
  };
  ASSERT_TRUE(Apply(ServiceYaml("reviews") + "---\n" + we("r1", "10.0.0.1", "node-a") + "---\n" +
                    we("r2", "10.0.0.2", "node-b"))
                  .ok());
  SyncAgent a(NodeStub("node-a"), "node-a"), b(NodeStub("node-b"), "node-b");
  auto sa = a.Read(), sb = b.Read();
  ASSERT_TRUE(sa.has_snapshot() && sb.has_snapshot());
  EXPECT_EQ(sa.version(), 1u);
  EXPECT_TRUE(HasService(sa.snapshot(), "reviews"));
  EXPECT_TRUE(HasService(sb.snapshot(), "reviews"));
  ASSERT_EQ(sa.snapshot().local_workloads_size(), 1);
  EXPECT_EQ(sa.snapshot().local_workloads(0).name(), "r1");
  ASSERT_EQ(sb.snapshot().local_workloads_size(), 1);
  EXPECT_EQ(sb.snapshot().local_workloads(0).name(), "r2");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equivalent(sa.snapshot().services(0),
                                                                    sb.snapshot().services(0)));
  a.Ack(sa);
  b.Ack(sb);
  // A third workload on node-a: both get the service (one more backend), only node-a the workload.
  ASSERT_TRUE(Apply(we("r3", "10.0.0.3", "node-a")).ok());
  auto da = a.Read(), db = b.Read();
  ASSERT_TRUE(da.has_delta() && db.has_delta());
  EXPECT_EQ(da.version(), 2u);
  EXPECT_EQ(db.version(), 2u);
  EXPECT_NE(da.nonce(), db.nonce());
  ASSERT_EQ(da.delta().upserted_services_size(), 1);
  ASSERT_EQ(db.delta().upserted_services_size(), 1);
  EXPECT_EQ(da.delta().upserted_services(0).ports(0).backends_size(), 3);
  ASSERT_EQ(da.delta().upserted_workloads_size(), 1);
  EXPECT_EQ(da.delta().upserted_workloads(0).name(), "r3");
  EXPECT_EQ(db.delta().upserted_workloads_size(), 0);
  // A reconnecting node gets the new version's snapshot (shared part rebuilt).
  b.Ack(db);
  SyncAgent b2(NodeStub("node-b"), "node-b");
  auto sb2 = b2.Read();
  ASSERT_TRUE(sb2.has_snapshot());
  EXPECT_EQ(sb2.version(), 2u);
  EXPECT_EQ(sb2.snapshot().services(0).ports(0).backends_size(), 3);
  ASSERT_EQ(sb2.snapshot().local_workloads_size(), 1);
  EXPECT_EQ(sb2.snapshot().local_workloads(0).name(), "r2");
}

// gRPC's default receive limit is 4 MiB: a bigger apply must pass, and a
// message over Weft's limit must fail with an error naming that limit.
TEST_F(ControllerTest, BigMessagesPassAndOversizeOnesNameTheLimit) {
  Start();
  std::string big = ServiceYaml("reviews") + "# " + std::string(6 * 1024 * 1024, 'x') + "\n";
  v1::ApplyResponse resp;
  auto st = Apply(big, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.revision(), 1u);

  std::string huge(static_cast<size_t>(transport::kMaxMessageBytes) + 1024, '#');
  st = Apply(huge);
  huge.clear();
  huge.shrink_to_fit();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("exceeds the limit of 256 MiB"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("weft::transport::kMaxMessageBytes"), std::string::npos) << st.error_message();
}

TEST(Transport, ExplainLimitNamesTheLimit) {
  auto st = transport::ExplainLimit(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (21000000 vs. 4194304)"));
  EXPECT_EQ(st.error_message(),
            "gRPC message of 21000000 bytes exceeds the limit of 4 MiB (receiving; Weft's limit is 256 MiB, "
            "weft::transport::kMaxMessageBytes; the peer enforces a smaller one, gRPC's default is 4 MiB)");
  auto other = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "quota");
  EXPECT_EQ(transport::ExplainLimit(other).error_message(), "quota");
  auto unavailable = grpc::Status(grpc::StatusCode::UNAVAILABLE, "Received message larger than max (1 vs. 0)");
  EXPECT_EQ(transport::ExplainLimit(unavailable).error_message(), unavailable.error_message());
}

}  // namespace
}  // namespace weft::controller
