// Truthful status (issue 9 item 8), end to end: the real controller (in
// process) and the real weft-agent binary. A Service with more ports than the
// agent has service ids is NACKed; a harmless change after it must not make
// the node SYNCED while that Service is missing (before: the next delta was
// applied onto the last good config and ACKed, and `weftctl status` said
// SYNCED). The node is NACKED, then STALE, until a full snapshot is ACKed.
// See agent_fixture.hpp for the cgroup, pins and cleanup.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "controller/server.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "weft/transport.hpp"
#include "weft/v1/admin.grpc.pb.h"

namespace weft {
namespace {

std::string ServiceYaml(const std::string& name, int ports) {
  std::string y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                  "\n  namespace: default\nspec:\n  selector:\n    app: " + name + "\n  ports:\n";
  for (int i = 0; i < ports; ++i)
    y += "  - name: p" + std::to_string(i) + "\n    port: " + std::to_string(8000 + i) + "\n";
  return y;
}

class StatusTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    spdlog::set_level(spdlog::level::warn);
    controller::ServerOptions o;
    o.data_dir = tmp_ + "/controller";
    o.init = true;
    o.listen = "127.0.0.1:0";
    o.admin_socket = "";
    auto s = controller::ControllerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
    source_args_ = {"--controller", server_->tcp_target()};
    auto ch = transport::Dial(server_->tcp_target());
    ASSERT_TRUE(ch.ok());
    admin_ = v1::Admin::NewStub(*ch);
  }
  void TearDown() override {
    KillAgent(SIGKILL);
    if (server_) server_->Shutdown();
    server_.reset();
    AgentTest::TearDown();
  }

  // weftctl apply / delete: the Admin API (store, compile, push).
  uint64_t Apply(const std::string& yaml) {
    v1::ApplyRequest req;
    auto* f = req.add_files();
    f->set_name("test.yaml");
    f->set_content(yaml);
    v1::ApplyResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    auto st = admin_->Apply(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.revision();
  }
  uint64_t DeleteService(const std::string& name) {
    v1::DeleteRequest req;
    auto* ref = req.add_refs();
    ref->set_kind("Service");
    ref->set_namespace_("default");
    ref->set_name(name);
    v1::DeleteResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    auto st = admin_->Delete(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.revision();
  }
  std::optional<controller::NodeRecord> Node() { return server_->nodes().Find(kNode); }
  // Waits until the push of `version` was answered (the node is no longer STALE at it).
  bool Answered(uint64_t version) {
    return WaitFor([&] {
      auto n = Node();
      return n && n->last_sent_version == version && n->state() != controller::NodeState::kStale;
    });
  }
  std::set<std::string> Services() { return PinnedServices(MapPin(WEFT_MAP_SERVICES)); }

  std::unique_ptr<controller::ControllerServer> server_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(StatusTest, AfterANackTheNodeIsNotSyncedUntilAFullSnapshotIsAcked) {
  extra_args_ = {"--max-services", "4"};  // service ids 1..3
  ASSERT_EQ(Apply(ServiceYaml("small", 1)), 1u);
  StartAgent();
  ASSERT_TRUE(Answered(1));
  ASSERT_EQ(Node()->state(), controller::NodeState::kSynced);
  const auto v1 = Services();
  ASSERT_EQ(v1.size(), 1u);

  // Five ports: more than the agent's ids. NACKed, nothing changed.
  ASSERT_EQ(Apply(ServiceYaml("big", 5)), 2u);
  ASSERT_TRUE(Answered(2));
  EXPECT_EQ(Node()->state(), controller::NodeState::kNacked);
  EXPECT_NE(Node()->nack_reason.find("service ids exhausted"), std::string::npos) << Node()->nack_reason;
  EXPECT_EQ(Services(), v1);

  // A harmless change. The node's config is version 1, not 2: it must not
  // end up SYNCED at 3 without "big".
  ASSERT_EQ(Apply(ServiceYaml("harmless", 1)), 3u);
  ASSERT_TRUE(Answered(3));
  auto n = *Node();
  EXPECT_EQ(n.state(), controller::NodeState::kNacked) << "the node shows " << controller::ToString(n.state())
                                                      << " while Service default/big is missing from it";
  EXPECT_EQ(n.last_acked_version, 1u);
  EXPECT_EQ(Services(), v1) << "a push onto a config the node does not have was applied";

  // The cause goes away: the next push is a full snapshot, ACKed: SYNCED.
  ASSERT_EQ(DeleteService("big"), 4u);
  ASSERT_TRUE(Answered(4));
  EXPECT_EQ(Node()->state(), controller::NodeState::kSynced) << Node()->nack_reason;
  EXPECT_EQ(Node()->last_acked_version, 4u);
  EXPECT_EQ(Services().size(), 2u);
}

}  // namespace
}  // namespace weft
