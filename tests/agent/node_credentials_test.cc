// The agent's node identity (agent/node_credentials.*) against a real
// in-process controller (no kernel): join with a token file, the key made
// here and kept 0600, the stream over mutual TLS, renewal (by hand and by the
// renewal thread at half the lifetime), and the refusals an agent must tell
// apart (a bad token is fatal; an impostor on the port is retried).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "agent/node_credentials.hpp"
#include "controller/server.hpp"
#include "tests/controller/test_util.hpp"
#include "tests/support/tls_util.hpp"
#include "weft/clock.hpp"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/transport.hpp"
#include "weft/v1/config.grpc.pb.h"
#include "weft/v1/identity.grpc.pb.h"

namespace weft::agent {
namespace {

using namespace std::chrono_literals;
using controller::testing::Eventually;
using controller::testing::TempDir;

unsigned Mode(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

class NodeCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::err); }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  void Start(std::chrono::seconds node_ttl = 24h) {
    controller::ServerOptions o;
    o.data_dir = dir_.path() + "/data";
    o.listen = "127.0.0.1:0";
    o.admin_socket = dir_.path() + "/run/admin.sock";
    o.ca.node_cert_ttl = node_ttl;
    o.clock = clock_;
    o.init = !std::filesystem::exists(o.data_dir + "/weft.db");  // a new store the first time
    auto s = controller::ControllerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
  }
  std::string TokenFile(const std::string& node, pki::TimePoint at = pki::Clock::now()) {
    auto t = server_->ca().CreateJoinToken(node, 1h, at);
    EXPECT_TRUE(t.ok()) << t.status().message();
    std::string f = dir_.path() + "/token-" + std::to_string(++tokens_);
    EXPECT_TRUE(sys::WriteFileAtomic(f, t->token + "\n", 0600).ok());
    return f;
  }
  NodeCredentialsOptions Options(const std::string& node, const std::string& token_file) {
    NodeCredentialsOptions o;
    o.controller = server_->tcp_target();
    o.node = node;
    o.dir = dir_.path() + "/creds-" + node;
    o.join_token_file = token_file;
    o.refresh = 1s;
    return o;
  }
  // A hello on the node's mTLS channel: true if a snapshot came back.
  bool StreamWorks(NodeCredentials& c, const std::string& node) {
    auto ch = transport::Dial(c.options().controller, c.ChannelCredentials());
    if (!ch.ok()) return false;
    auto stub = v1::ConfigDiscovery::NewStub(*ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    auto s = stub->Stream(&ctx);
    v1::AgentMessage h;
    h.mutable_hello()->set_node(node);
    s->Write(h);
    v1::ControllerMessage m;
    bool got = s->Read(&m) && m.has_snapshot();
    ctx.TryCancel();
    s->Finish();
    return got;
  }

  TempDir dir_;
  FakeClock fake_clock_;          // outlives server_ (and any thread waiting on it)
  const Clock* clock_ = nullptr;  // the controller's (nullptr: the system clock)
  std::unique_ptr<controller::ControllerServer> server_;
  int tokens_ = 0;
};

TEST_F(NodeCredentialsTest, JoinsOnceThenUsesItsCredentialsAndRenews) {
  Start();
  auto token = TokenFile("node1");
  auto c = NodeCredentials::Open(Options("node1", token));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE((*c)->ready());
  ASSERT_TRUE((*c)->Join().ok());
  EXPECT_TRUE((*c)->ready());
  const std::string dir = dir_.path() + "/creds-node1";
  EXPECT_EQ(Mode(dir), 0700u);
  for (const char* f : {"/key.pem", "/cert.pem", "/ca.pem"}) EXPECT_EQ(Mode(dir + f), 0600u) << f;
  auto first = credentials::Load({dir}).value();
  EXPECT_EQ(*first.leaf().SpiffeId(), "spiffe://cluster.local/weft/node/node1");
  EXPECT_TRUE(StreamWorks(**c, "node1"));
  // Half the lifetime: renewal from then on.
  auto half = first.leaf().NotBefore() + (first.leaf().NotAfter() - first.leaf().NotBefore()) / 2;
  EXPECT_EQ((*c)->renew_at(), half);

  // Renewed over mTLS: a new certificate for the same key and node.
  ASSERT_TRUE((*c)->Renew().ok());
  auto second = credentials::Load({dir}).value();
  EXPECT_NE(second.leaf().Sha256Fingerprint(), first.leaf().Sha256Fingerprint());
  EXPECT_EQ(second.key.ToPem(), first.key.ToPem());
  EXPECT_EQ(*second.leaf().SpiffeId(), "spiffe://cluster.local/weft/node/node1");

  // A restart: the credentials are used as they are; the token (used up) is not needed.
  auto again = NodeCredentials::Open(Options("node1", ""));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE((*again)->ready());
  EXPECT_TRUE(StreamWorks(**again, "node1"));
  // Another node's name on these credentials: not usable, and no token to join with.
  auto o = Options("node2", "");
  o.dir = dir;
  auto other = NodeCredentials::Open(o);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("expected spiffe://cluster.local/weft/node/node2"), std::string::npos)
      << other.status().message();
}

// The renewal thread renews at half the lifetime and gives up at expiry, on
// the clock it is given (weft/clock.hpp): here a fake one that the controller
// shares, moved by hours, so the test takes milliseconds (it used to issue a
// 4 s certificate and wait 2 s of real time for its renewal).
TEST_F(NodeCredentialsTest, RenewalAndExpiryOnTheInjectedClock) {
  FakeClock& clock = fake_clock_;
  clock_ = &clock;
  Start();  // 24 h node certificates, issued at the fake time
  auto o = Options("node1", TokenFile("node1", clock.Now()));
  o.clock = &clock;
  auto c = NodeCredentials::Open(o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE((*c)->Join().ok());
  const std::string dir = dir_.path() + "/creds-node1";
  auto half_of = [](const pki::Certificate& leaf) {
    return leaf.NotBefore() + (leaf.NotAfter() - leaf.NotBefore()) / 2;
  };
  const auto first = credentials::Load({dir}).value().leaf();
  const auto half = half_of(first);
  EXPECT_EQ((*c)->renew_at(), half);

  // The thread waits on the fake clock for half the lifetime: nothing happens
  // until the clock gets there, then it renews (same key, a new certificate).
  (*c)->StartRenewal();
  ASSERT_TRUE(Eventually([&] { return clock.NextDeadline() == half; })) << "not waiting for half the lifetime";
  EXPECT_EQ(credentials::Load({dir}).value().leaf().Sha256Fingerprint(), first.Sha256Fingerprint());
  clock.Set(half);
  ASSERT_TRUE(Eventually([&] {
    auto id = credentials::Load({dir});
    return id.ok() && id->leaf().Sha256Fingerprint() != first.Sha256Fingerprint();
  })) << "not renewed at half the lifetime";
  const auto second = credentials::Load({dir}).value().leaf();
  EXPECT_EQ(second.NotBefore(), half - std::chrono::minutes(5)) << "issued at the fake time";
  ASSERT_TRUE(Eventually([&] { return (*c)->renew_at() == half_of(second); }));
  ASSERT_TRUE(Eventually([&] { return clock.NextDeadline() == half_of(second); })) << "waiting for the next one";

  // The controller goes away; past the certificate's end the renewal fails,
  // the node says its certificate expired, and retries every second.
  server_->Shutdown();
  clock.Set(second.NotAfter() + std::chrono::minutes(1));
  ASSERT_TRUE(Eventually([&] { return (*c)->renew_at() == clock.Now() + std::chrono::seconds(1); }))
      << "no retry after the failed renewal";
  EXPECT_EQ((*c)->not_after(), second.NotAfter());
  // A restart at that time: the credentials are refused as expired, with the way out.
  auto later = Options("node1", "");
  later.clock = &clock;
  auto expired = NodeCredentials::Open(later);
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.status().message().find("certificate has expired"), std::string::npos)
      << expired.status().message();
  EXPECT_NE(expired.status().message().find("weftctl node join-token node1"), std::string::npos)
      << expired.status().message();
  c->reset();  // the renewal thread stops before the clock goes
}

// What a join attempt answers: EACCES (give up: the token is bad) or another
// error (retry: the controller is down or not the controller).
TEST_F(NodeCredentialsTest, JoinRefusalsAreFatalImpostorsAreRetried) {
  Start();
  struct Row {
    const char* name;
    std::function<std::string()> token_file;
    std::string node;
    const char* says;
  };
  std::string used = TokenFile("node1");
  ASSERT_TRUE(NodeCredentials::Open(Options("node1", used)).value()->Join().ok());
  const std::vector<Row> rows = {
      {"replayed by another node", [&] { return used; }, "node9", "already used"},
      {"replayed by its node", [&] { return used; }, "node1", "already used"},
      {"expired", [&] { return TokenFile("node2", pki::Clock::now() - 2h); }, "node2", "expired at"},
      {"other node's", [&] { return TokenFile("node3"); }, "node4", "is for node \"node3\", not \"node4\""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto o = Options(row.node, row.token_file());
    o.dir = dir_.path() + "/creds-" + row.node + "-" + row.name;
    auto c = NodeCredentials::Open(o);
    ASSERT_TRUE(c.ok()) << c.status().message();
    Status st = (*c)->Join();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.err(), EACCES) << st.message();
    EXPECT_NE(st.message().find(row.says), std::string::npos) << st.message();
  }

  // An impostor on the port (its own CA): refused before the token is sent, and retried.
  auto impostor_ca =
      pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), "cluster.local", 24h).value();
  v1::NodeIdentity::Service unimplemented;  // a server needs a service
  grpc::ServerBuilder b;
  b.RegisterService(&unimplemented);
  int port = 0;
  b.AddListeningPort("127.0.0.1:0",
                     transport::TlsServerCredentials(transport::StaticCertificates(weft::testing::IssueIdentity(
                         impostor_ca, pki::ControllerId("cluster.local"), pki::Usage::kServer))),
                     &port);
  auto impostor = b.BuildAndStart();
  ASSERT_TRUE(impostor);
  auto o = Options("node5", TokenFile("node5"));
  o.controller = "127.0.0.1:" + std::to_string(port);
  auto c = NodeCredentials::Open(o);
  ASSERT_TRUE(c.ok());
  Status st = (*c)->Join();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err(), EACCES) << st.message();
  EXPECT_FALSE((*c)->ready());
  impostor->Shutdown();
  // The real controller: the same token still works (it never left the node).
  o.controller = server_->tcp_target();
  auto real = NodeCredentials::Open(o);
  ASSERT_TRUE(real.ok());
  EXPECT_TRUE((*real)->Join().ok());
}

}  // namespace
}  // namespace weft::agent
