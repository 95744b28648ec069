// weft-controller in process: Admin over gRPC (real parser), the
// ConfigDiscovery stream protocol (real compiler), a 1,000-agent fan-out and
// a restart on the same data dir.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
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
  // Starts the controller on dir_/data, creating its store (--init) the first time.
  void Start() {
    ServerOptions o = options_;
    o.data_dir = dir_.path() + "/data";
    o.listen = "127.0.0.1:0";
    o.admin_socket = dir_.path() + "/run/controller.sock";
    o.init = !std::filesystem::exists(o.data_dir + "/weft.db");
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
    local_stub_.reset();
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
  // ConfigDiscovery on the root-only unix socket: any node name (the bounds on
  // names, hellos and streams hold there too, and no certificate could name
  // what they test).
  v1::ConfigDiscovery::Stub& LocalStub() {
    if (!local_stub_) {
      auto ch = transport::Dial("unix:" + dir_.path() + "/run/controller.sock");
      EXPECT_TRUE(ch.ok()) << ch.status().message();
      local_stub_ = v1::ConfigDiscovery::NewStub(*ch);
    }
    return *local_stub_;
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
  grpc::Status DeleteService(const std::string& name) {
    v1::DeleteRequest dq;
    auto* ref = dq.add_refs();
    ref->set_kind("Service");
    ref->set_namespace_("default");
    ref->set_name(name);
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    return admin_->Delete(&ctx, dq, &resp);
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
  ServerOptions options_;  // bounds a test sets before Start()
  std::unique_ptr<ControllerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::map<std::string, std::unique_ptr<v1::ConfigDiscovery::Stub>> node_stubs_;
  std::unique_ptr<v1::ConfigDiscovery::Stub> local_stub_;
};

// A synchronous fake agent: one stream, blocking reads with a deadline.
class SyncAgent {
 public:
  // Says hello as `node` (with what the node has applied, if given).
  SyncAgent(v1::ConfigDiscovery::Stub& stub, const std::string& node, uint64_t applied_version = 0,
            const std::string& store_id = "") {
    ctx_.set_deadline(std::chrono::system_clock::now() + 60s);
    stream_ = stub.Stream(&ctx_);
    v1::AgentMessage m;
    m.mutable_hello()->set_node(node);
    m.mutable_hello()->set_agent_version("test-0.1");
    m.mutable_hello()->set_applied_version(applied_version);
    m.mutable_hello()->set_store_id(store_id);
    stream_->Write(m);
  }
  // A stream that sends no hello (yet).
  explicit SyncAgent(v1::ConfigDiscovery::Stub& stub) {
    ctx_.set_deadline(std::chrono::system_clock::now() + 60s);
    stream_ = stub.Stream(&ctx_);
  }
  v1::ControllerMessage Read() {
    v1::ControllerMessage m;
    EXPECT_TRUE(stream_->Read(&m));
    return m;
  }
  bool TryRead(v1::ControllerMessage* m) { return stream_->Read(m); }
  grpc::Status Finish() { return stream_->Finish(); }
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
  // Every push names the store; a delta names the version it applies onto.
  EXPECT_EQ(snap.store_id(), server_->store_id());
  EXPECT_FALSE(snap.has_base_version());
  EXPECT_EQ(d.store_id(), server_->store_id());
  ASSERT_TRUE(d.has_base_version());
  EXPECT_EQ(d.base_version(), 1u);
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

  // After a NACK the next push is a full snapshot, not a delta onto the
  // NACKed version: the node stays NACKED until it is sent, STALE until it
  // is ACKed.
  ASSERT_TRUE(DeleteService("ratings").ok());
  auto d4 = a.Read();
  EXPECT_EQ(d4.version(), 4u);
  ASSERT_TRUE(d4.has_snapshot()) << "a delta after a NACK";
  EXPECT_TRUE(HasService(d4.snapshot(), "reviews"));
  EXPECT_FALSE(HasService(d4.snapshot(), "ratings"));
  EXPECT_EQ(Node("node-a")->state(), "STALE");
  a.Ack(d4);
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "SYNCED"; }));

  // A delete is pushed as a removal (a delta again, onto the snapshot).
  ASSERT_TRUE(Apply(ServiceYaml("details")).ok());
  auto d5 = a.Read();
  ASSERT_TRUE(d5.has_delta());
  EXPECT_EQ(d5.base_version(), 4u);
  a.Ack(d5);
  ASSERT_TRUE(DeleteService("details").ok());
  auto d6 = a.Read();
  EXPECT_EQ(d6.version(), 6u);
  ASSERT_TRUE(d6.has_delta());
  EXPECT_EQ(d6.base_version(), 5u);
  ASSERT_EQ(d6.delta().removed_services_size(), 1);
  EXPECT_EQ(d6.delta().removed_services(0), "default/details");
  a.Ack(d6);
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

  // The server refuses a message over kMaxServerReceiveBytes before any
  // handler (or authorization) runs: nobody makes it hold 256 MiB.
  std::string huge(static_cast<size_t>(transport::kMaxServerReceiveBytes) + 1024, '#');
  st = Apply(huge);
  huge.clear();
  huge.shrink_to_fit();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("exceeds the limit of 40 MiB"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("weft::transport::kMaxServerReceiveBytes"), std::string::npos)
      << st.error_message();
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


// ---- never fail open (issue 9 item 5) ----

// A store emptied behind the controller's back: the controller refuses to
// start (before: it started at revision 0 and pushed an empty snapshot to
// every agent). --init does not paper over it either.
TEST_F(ControllerTest, EmptiedStoreRefusesToStart) {
  Start();
  ASSERT_TRUE(Apply(ServiceYaml("reviews")).ok());
  const std::string id = server_->store_id();
  server_->Shutdown();
  server_.reset();
  const std::string data = dir_.path() + "/data";
  std::filesystem::resize_file(data + "/weft.db", 0);
  std::filesystem::remove(data + "/weft.db-wal");
  std::filesystem::remove(data + "/weft.db-shm");
  for (bool init : {false, true}) {
    ServerOptions o;
    o.data_dir = data;
    o.listen = "127.0.0.1:0";
    o.admin_socket = "";
    o.init = init;
    auto s = ControllerServer::Start(o);
    ASSERT_FALSE(s.ok()) << "started on an emptied store (init " << init << ")";
    EXPECT_NE(s.status().message().find(init ? "already exists" : "is empty"), std::string::npos)
        << s.status().message();
  }
  // A missing data dir without --init: refused, and nothing is created.
  ServerOptions o;
  o.data_dir = dir_.path() + "/elsewhere";
  o.listen = "";
  o.admin_socket = "";
  auto s = ControllerServer::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--init"), std::string::npos) << s.status().message();
  EXPECT_FALSE(std::filesystem::exists(o.data_dir));
  // The store id survives a restart (agents compare it).
  std::filesystem::remove_all(data);
  Start();
  EXPECT_NE(server_->store_id(), id) << "a new store has a new id";
  const std::string id2 = server_->store_id();
  server_->Shutdown();
  server_.reset();
  Start();
  EXPECT_EQ(server_->store_id(), id2);
  EXPECT_EQ(Status().store_id(), id2);
}

// ---- the controller behind a node (issue 9 item 3) ----

// A node that applied a later revision of this very store than the
// controller holds (the store was restored from an older copy): the
// controller pushes it nothing and shows it BEHIND, until a revision passes
// the node's. A node of another store is simply sent the snapshot (a reset).
TEST_F(ControllerTest, ControllerBehindANodeSaysSoAndDoesNotPush) {
  Start();
  ASSERT_TRUE(Apply(ServiceYaml("reviews")).ok());  // revision 1
  SyncAgent ahead(LocalStub(), "node-a", /*applied_version=*/2, server_->store_id());
  ASSERT_TRUE(Eventually([&] { return Node("node-a") && Node("node-a")->state() == "BEHIND"; }));
  auto n = *Node("node-a");
  EXPECT_EQ(n.last_sent_version(), 0u);
  EXPECT_EQ(n.agent_applied_version(), 2u);
  EXPECT_EQ(n.agent_store_id(), server_->store_id());
  EXPECT_NE(n.state_reason().find("at revision 1"), std::string::npos) << n.state_reason();
  EXPECT_NE(n.state_reason().find("applied revision 2"), std::string::npos) << n.state_reason();

  ASSERT_TRUE(Apply(ServiceYaml("ratings")).ok());  // revision 2: not past the node's
  EXPECT_EQ(Node("node-a")->state(), "BEHIND");
  EXPECT_EQ(Node("node-a")->last_sent_version(), 0u);

  ASSERT_TRUE(Apply(ServiceYaml("details")).ok());  // revision 3: past it, a snapshot
  auto snap = ahead.Read();
  ASSERT_TRUE(snap.has_snapshot());
  EXPECT_EQ(snap.version(), 3u);
  EXPECT_EQ(Node("node-a")->state(), "STALE");
  ahead.Ack(snap);
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "SYNCED"; }));

  // Another store: a reset, the snapshot comes at once.
  SyncAgent other(LocalStub(), "node-b", 99, "0123456789abcdef0123456789abcdef");
  auto s2 = other.Read();
  ASSERT_TRUE(s2.has_snapshot());
  EXPECT_EQ(s2.version(), 3u);
}

// ---- bounded control-plane resources (issue 9 item 9) ----

TEST_F(ControllerTest, NodeNamesMustBeDns1123Subdomains) {
  Start();
  const std::vector<std::pair<std::string, bool>> rows = {
      {"node-1", true},
      {"node-1.zone-a.example", true},
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(61, 'd'),
       true},  // 253
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(62, 'd'),
       false},  // 254
      {std::string(64, 'a'), false},  // a label of 64
      {std::string(1 << 20, 'a'), false},
      {"Node1", false},
      {"node_1", false},
      {"-node", false},
      {"node..a", false},
      {"node/../x", false},
      {std::string("no\nde"), false},
  };
  for (const auto& [name, ok] : rows) {
    SCOPED_TRACE(name.substr(0, 40) + " (" + std::to_string(name.size()) + " bytes)");
    SyncAgent a(LocalStub(), name);
    v1::ControllerMessage m;
    if (ok) {
      EXPECT_TRUE(a.TryRead(&m));
      EXPECT_TRUE(m.has_snapshot());
      a.Close();
      continue;
    }
    EXPECT_FALSE(a.TryRead(&m));
    auto st = a.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("is not a DNS-1123 subdomain"), std::string::npos) << st.error_message();
    EXPECT_LT(st.error_message().size(), 512u) << "the refusal echoes the whole name";
  }
  const auto st = Status();
  for (const auto& n : st.nodes()) EXPECT_LE(n.node().size(), 253u);
}

// A stream that never says hello is closed after the hello deadline (before:
// kept until the client gave up; 5,000 of them were all kept).
TEST_F(ControllerTest, SilentStreamsAreClosedAfterTheHelloDeadline) {
  options_.hello_timeout = 300ms;
  Start();
  SyncAgent silent(LocalStub());
  v1::ControllerMessage m;
  EXPECT_FALSE(silent.TryRead(&m));
  auto st = silent.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_NE(st.error_message().find("no hello within 300 ms"), std::string::npos) << st.error_message();
  ASSERT_TRUE(Eventually([&] { return server_->streams() == 0; }));
  // A stream that says hello in time is not touched by the deadline.
  SyncAgent a(LocalStub(), "node-a");
  auto snap = a.Read();
  a.Ack(snap);
  std::this_thread::sleep_for(600ms);
  ASSERT_TRUE(Eventually([&] { return Node("node-a") && Node("node-a")->state() == "SYNCED"; }));
}

// More streams than --max-streams: refused with RESOURCE_EXHAUSTED and a
// message; a slot frees when a stream ends.
TEST_F(ControllerTest, StreamsBeyondTheCapAreRefused) {
  options_.max_streams = 3;
  Start();
  std::vector<std::unique_ptr<SyncAgent>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(std::make_unique<SyncAgent>(LocalStub(), "node-" + std::to_string(i)));
    EXPECT_TRUE(agents.back()->Read().has_snapshot());
  }
  {
    SyncAgent extra(LocalStub(), "node-extra");
    v1::ControllerMessage m;
    EXPECT_FALSE(extra.TryRead(&m));
    auto st = extra.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_NE(st.error_message().find("at most 3 ConfigDiscovery streams"), std::string::npos) << st.error_message();
  }
  EXPECT_FALSE(Node("node-extra"));
  agents[0]->Close();
  agents.erase(agents.begin());
  // The slot is free once the ended streams are gone.
  bool in = Eventually([&] {
    SyncAgent again(LocalStub(), "node-again");
    v1::ControllerMessage m;
    if (again.TryRead(&m)) {
      again.Close();
      return true;
    }
    again.Finish();
    return false;
  });
  EXPECT_TRUE(in);
}

// Disconnected nodes are forgotten beyond a count (the longest gone first)
// and after a time (before: 2,000 hellos with new names stayed forever).
TEST_F(ControllerTest, DisconnectedNodesAreForgotten) {
  options_.max_disconnected_nodes = 5;
  Start();
  for (int i = 0; i < 20; ++i) {
    SyncAgent a(LocalStub(), "spam-" + std::to_string(i));
    a.Read();
    a.Close();
    ASSERT_TRUE(Eventually([&] {
      auto n = Node("spam-" + std::to_string(i));
      return !n || n->state() == "DISCONNECTED";
    }));
  }
  auto st = Status();
  EXPECT_EQ(st.nodes_size(), 5);
  for (const auto& n : st.nodes()) EXPECT_GE(std::stoi(n.node().substr(5)), 15) << n.node();
}

TEST(NodeRegistryBounds, ForgetsDisconnectedNodesAfterTheTime) {
  FakeClock clock(std::chrono::system_clock::time_point(std::chrono::milliseconds(1'000'000)));
  NodeRegistryOptions o;
  o.forget_disconnected = std::chrono::milliseconds(60'000);
  o.max_disconnected = 100;
  o.clock = &clock;
  NodeRegistry r(o);
  v1::NodeHello h;
  h.set_node("gone");
  r.Connected(h, 1);
  h.set_node("live");
  r.Connected(h, 2);
  r.Disconnected("gone", 1);
  clock.Advance(std::chrono::milliseconds(59'999));
  EXPECT_EQ(r.All().size(), 2u);
  clock.Advance(std::chrono::milliseconds(1));
  auto all = r.All();
  ASSERT_EQ(all.size(), 1u) << "the disconnected node is still listed";
  EXPECT_EQ(all[0].node, "live");  // a connected node is never forgotten
  clock.Advance(std::chrono::milliseconds(10'000'000));
  EXPECT_EQ(r.All().size(), 1u);
}

// Disconnects within one millisecond are forgotten in the order they happened,
// not by name ("spam-9" sorts after "spam-15").
TEST(NodeRegistryBounds, SameMillisecondDisconnectsGoOldestFirst) {
  NodeRegistryOptions o;
  o.max_disconnected = 2;
  FakeClock clock(std::chrono::system_clock::time_point(std::chrono::milliseconds(1'000'000)));  // never moves
  o.clock = &clock;
  NodeRegistry r(o);
  v1::NodeHello h;
  for (int i : {9, 15, 16}) {
    h.set_node("spam-" + std::to_string(i));
    r.Connected(h, static_cast<uint64_t>(i));
    r.Disconnected(h.node(), static_cast<uint64_t>(i));
  }
  auto all = r.All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].node, "spam-15");
  EXPECT_EQ(all[1].node, "spam-16");
}

// A 1 MiB agent_version and NACK reason are kept capped, on one line.
TEST_F(ControllerTest, AgentVersionAndNackReasonAreCapped) {
  Start();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  auto stream = LocalStub().Stream(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node("node-a");
  hello.mutable_hello()->set_agent_version(std::string(1 << 20, 'v'));
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage snap;
  ASSERT_TRUE(stream->Read(&snap));
  v1::AgentMessage nack;
  nack.mutable_nack()->set_version(snap.version());
  nack.mutable_nack()->set_nonce(snap.nonce());
  const std::string reason = "line one\nline two\x1b[2J" + std::string(1 << 20, 'r');
  nack.mutable_nack()->set_error(reason);
  ASSERT_TRUE(stream->Write(nack));
  ASSERT_TRUE(Eventually([&] { return Node("node-a")->state() == "NACKED"; }));
  auto n = *Node("node-a");
  EXPECT_LE(n.agent_version().size(), kMaxAgentVersionBytes + 32);
  EXPECT_LE(n.nack_reason().size(), kMaxNackReasonBytes + 32);
  EXPECT_EQ(n.nack_reason().rfind("line one line two", 0), 0u) << n.nack_reason().substr(0, 40);
  EXPECT_EQ(n.nack_reason().find('\x1b'), std::string::npos);
  EXPECT_NE(n.nack_reason().find("(" + std::to_string(reason.size()) + " bytes)"), std::string::npos)
      << n.nack_reason().substr(4000);
  stream->WritesDone();
  stream->Finish();
}

TEST(CapText, OneLineCutAtACharacter) {
  EXPECT_EQ(CapText("short", 10), "short");
  EXPECT_EQ(CapText("a\nb\tc", 10), "a b c");
  EXPECT_EQ(CapText("abcdefghij", 4), "abcd... (10 bytes)");
  // "é" is two bytes: a cut inside it drops it whole.
  EXPECT_EQ(CapText("abc\xc3\xa9xyz", 4), "abc... (8 bytes)");
}
// Issue 9 items 4 and 11 at the Admin API: what weftctl would never send
// (it checks the same limits first) is refused by the controller itself with
// INVALID_ARGUMENT naming file:line:col, and nothing is stored. Before: the
// alias bomb was expanded (563 bytes: 6 s, RSS 20 MB -> 1.2 GB, stored), text
// that is not UTF-8 failed to parse as a request ("UNIMPLEMENTED", weftctl
// exit 2), a 40 MiB request was parsed.
TEST_F(ControllerTest, AdminRefusesUnboundedOrInvalidInput) {
  Start();
  ASSERT_TRUE(Apply(ServiceYaml("reviews")).ok());
  std::ifstream in(WEFT_TESTDATA_DIR "/resources/invalid/deployment-alias-bomb.yaml");
  const std::string bomb((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  struct Row {
    std::string name, file, text, want;
  };
  const std::vector<Row> rows = {
      {"alias bomb", "bomb.yaml", bomb, "bomb.yaml:16:18: document 1: alias *a3 expands to 7381 nodes"},
      {"not UTF-8", "latin1.yaml", ServiceYaml("caf\xe9"), "latin1.yaml:4:12: input: invalid UTF-8 (byte 0xe9)"},
      {"a NUL", "nul.yaml", ServiceYaml(std::string("a\0b", 3)),
       "nul.yaml:4:10: input: control character U+0000 (NUL) is not allowed in YAML text"},
      {"a file name that is not UTF-8", "conf/\xff.yaml", "kind: [", "conf/\\xff.yaml:1:1: YAML syntax error"},
      {"over the request limit", "big.yaml", ServiceYaml("big") + "#" + std::string(33 << 20, ' ') + "\n",
       "request: 34603152 bytes in 1 files, more than 32 MiB (the limit per request); split it"},
  };
  const uint64_t revision = Status().revision();
  for (const auto& row : rows) {
    for (bool dry_run : {false, true}) {
      auto st = Apply(row.text, nullptr, dry_run, row.file);
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << row.name << ": " << st.error_message();
      EXPECT_EQ(st.error_message().rfind(row.want, 0), 0u) << row.name << ": " << st.error_message();
    }
  }
  EXPECT_EQ(Status().revision(), revision);
}

// Issue 9 item 7: one address, one workload. A WorkloadEntry that takes an
// address another one holds is refused naming both; moving addresses in one
// apply, or reusing one after a delete, is fine. Before: every step was
// accepted, and the identity of 10.1.0.5 went to whichever name sorted first.
TEST_F(ControllerTest, AWorkloadAddressBelongsToOneWorkload) {
  Start();
  auto entry = [](const std::string& ns, const std::string& name, const std::string& address) {
    return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: " + name + ", namespace: " + ns +
           "}\nspec: {address: " + address + ", serviceAccount: " + name + "}\n";
  };
  auto remove = [&](const std::string& ns, const std::string& name) {
    v1::DeleteRequest dq;
    auto* ref = dq.add_refs();
    ref->set_kind("WorkloadEntry");
    ref->set_namespace_(ns);
    ref->set_name(name);
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    return admin_->Delete(&ctx, dq, &resp);
  };
  struct Step {
    std::string name, yaml;
    bool dry_run = false;
    std::string want;  // "" accepted
  };
  const std::vector<Step> steps = {
      {"the first claimant", entry("shop", "vm-a", "10.1.0.5")},
      {"another namespace, same address", entry("other", "impostor", "10.1.0.5"), false,
       "test.yaml:1:1: WorkloadEntry other/impostor: spec.address: address 10.1.0.5 is already the address of "
       "WorkloadEntry shop/vm-a (stored): one address, one workload"},
      {"the same, dry run", entry("other", "impostor", "10.1.0.5"), true, "test.yaml:1:1: WorkloadEntry other/impostor"},
      {"IPv6 written another way", entry("shop", "v6-a", "fd00::5") + "---\n" + entry("shop", "v6-b", "fd00:0::5"),
       false,
       "test.yaml:9:17: WorkloadEntry shop/v6-b: spec.address: address fd00::5 is already the address of "
       "WorkloadEntry shop/v6-a (line 4)"},
      {"vm-a moves, impostor takes its old address", entry("shop", "vm-a", "10.1.0.7") + "---\n" +
                                                          entry("other", "impostor", "10.1.0.5")},
      {"vm-b on vm-a's new address", entry("shop", "vm-b", "10.1.0.7"), false,
       "test.yaml:1:1: WorkloadEntry shop/vm-b: spec.address: address 10.1.0.7 is already the address of "
       "WorkloadEntry shop/vm-a (stored)"},
      {"re-applying vm-a unchanged", entry("shop", "vm-a", "10.1.0.7")},
  };
  for (const auto& step : steps) {
    auto st = Apply(step.yaml, nullptr, step.dry_run);
    if (step.want.empty()) {
      EXPECT_TRUE(st.ok()) << step.name << ": " << st.error_message();
    } else {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << step.name;
      EXPECT_EQ(st.error_message().rfind(step.want, 0), 0u) << step.name << ": " << st.error_message();
    }
  }
  ASSERT_TRUE(remove("shop", "vm-a").ok());
  EXPECT_TRUE(Apply(entry("shop", "vm-b", "10.1.0.7")).ok()) << "an address is free again after a delete";

  // After a restart the index is read back from the store.
  server_->Shutdown();
  server_.reset();
  Start();
  auto st = Apply(entry("shop", "vm-c", "10.1.0.7"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("WorkloadEntry shop/vm-b (stored)"), std::string::npos) << st.error_message();
}

}  // namespace
}  // namespace weft::controller
