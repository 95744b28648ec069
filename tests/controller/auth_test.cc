// The controller's authentication, in process (issue 9, items 1 and 2): the
// TCP listener is mutual TLS, the Admin API needs an admin certificate, a
// stream serves only the node its certificate names, join tokens are
// single-use, bound to a node, expiring and hashed, and the files that hold
// secrets are private. Each attacker row here got in before (plaintext TCP,
// any hello name).
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "controller/server.hpp"
#include "test_util.hpp"
#include "tests/support/tls_util.hpp"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/transport.hpp"
#include "weft/v1/admin.grpc.pb.h"
#include "weft/v1/config.grpc.pb.h"
#include "weft/v1/identity.grpc.pb.h"

namespace weft::controller {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;
using testing::TempDir;
namespace v1 = weft::v1;

std::string ServiceYaml(const std::string& name) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\n  namespace: default\nspec:\n  selector:\n    app: " + name + "\n  ports:\n  - name: http\n    port: 80\n";
}
std::string WorkloadYaml(const std::string& name, const std::string& addr, const std::string& node) {
  return "apiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata:\n  name: " + name +
         "\n  namespace: default\n  annotations:\n    weft.io/node: " + node + "\nspec:\n  address: " + addr +
         "\n  labels:\n    app: web\n";
}


unsigned Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Who a test client is.
enum class Client { kPlaintext, kNoCertificate, kNode2, kAdmin, kOtherCaAdmin, kNode1 };
const char* Name(Client c) {
  switch (c) {
    case Client::kPlaintext: return "plaintext TCP (how weftctl and agents talked before)";
    case Client::kNoCertificate: return "TLS without a client certificate";
    case Client::kNode2: return "node2's certificate";
    case Client::kAdmin: return "an admin certificate";
    case Client::kOtherCaAdmin: return "an admin certificate from another CA";
    case Client::kNode1: return "node1's certificate";
  }
  return "?";
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(getenv("WEFT_TEST_LOG") ? spdlog::level::debug : spdlog::level::err); }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  ServerOptions Options() {
    ServerOptions o;
    o.data_dir = dir_.path() + "/data";
    o.listen = "127.0.0.1:0";
    o.admin_socket = dir_.path() + "/run/admin.sock";
    return o;
  }
  void Start(ServerOptions o) {
    o.init = !std::filesystem::exists(o.data_dir + "/weft.db");  // a new store the first time
    auto s = ControllerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
  }
  void Start() { Start(Options()); }
  ClusterCa& ca() { return server_->ca(); }
  std::string ControllerSpiffe() { return pki::ControllerId(ca().trust_domain()); }
  std::string Socket() { return "unix:" + dir_.path() + "/run/admin.sock"; }

  credentials::Identity Node(const std::string& node) {
    auto id = weft::testing::IdentityFromCsr([&](const std::string& csr) { return ca().IssueNode(node, csr); },
                                             ca().Bundle());
    EXPECT_TRUE(id.ok()) << id.status().message();
    return *id;
  }
  credentials::Identity Admin(const std::string& name) {
    auto id = weft::testing::IdentityFromCsr([&](const std::string& csr) { return ca().IssueAdmin(name, csr, 1h); },
                                             ca().Bundle());
    EXPECT_TRUE(id.ok()) << id.status().message();
    return *id;
  }

  std::shared_ptr<grpc::Channel> ChannelAs(Client c) {
    const std::string target = server_->tcp_target();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    switch (c) {
      case Client::kPlaintext:
        return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      case Client::kNoCertificate:
        return weft::testing::TlsChannel(target, nullptr, ca().Bundle(), ControllerSpiffe());
      case Client::kNode1:
      case Client::kNode2: {
        auto id = Node(c == Client::kNode1 ? "node1" : "node2");
        return weft::testing::TlsChannel(target, &id, ca().Bundle(), ControllerSpiffe());
      }
      case Client::kAdmin: {
        auto id = Admin("alice");
        return weft::testing::TlsChannel(target, &id, ca().Bundle(), ControllerSpiffe());
      }
      case Client::kOtherCaAdmin: {
        auto other = pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), ca().trust_domain(),
                                                           24h).value();
        auto id = weft::testing::IssueIdentity(other, pki::AdminId(ca().trust_domain(), "mallory"));
        return weft::testing::TlsChannel(target, &id, ca().Bundle(), ControllerSpiffe());
      }
    }
    return nullptr;
  }

  grpc::Status CallAdmin(v1::Admin::Stub& stub, const std::string& rpc) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    if (rpc == "Apply") {
      v1::ApplyRequest req;
      auto* f = req.add_files();
      f->set_name("attack.yaml");
      f->set_content(ServiceYaml("attacker"));
      v1::ApplyResponse resp;
      return stub.Apply(&ctx, req, &resp);
    }
    if (rpc == "Delete") {
      v1::DeleteRequest req;
      auto* r = req.add_refs();
      r->set_kind("Service");
      r->set_namespace_("default");
      r->set_name("keep");
      v1::DeleteResponse resp;
      return stub.Delete(&ctx, req, &resp);
    }
    if (rpc == "Get") {
      v1::GetRequest req;
      req.set_kind("Service");
      v1::GetResponse resp;
      return stub.Get(&ctx, req, &resp);
    }
    if (rpc == "Status") {
      v1::StatusResponse resp;
      return stub.Status(&ctx, v1::StatusRequest(), &resp);
    }
    if (rpc == "CreateJoinToken") {
      v1::JoinTokenRequest req;
      req.set_node("node9");
      v1::JoinTokenResponse resp;
      return stub.CreateJoinToken(&ctx, req, &resp);
    }
    ADD_FAILURE() << rpc;
    return grpc::Status::CANCELLED;
  }

  grpc::Status ApplyLocal(const std::string& yaml) {
    auto ch = transport::Dial(Socket());
    EXPECT_TRUE(ch.ok());
    auto stub = v1::Admin::NewStub(*ch);
    v1::ApplyRequest req;
    auto* f = req.add_files();
    f->set_name("setup.yaml");
    f->set_content(yaml);
    v1::ApplyResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return stub->Apply(&ctx, req, &resp);
  }
  v1::StatusResponse StatusLocal() {
    auto stub = v1::Admin::NewStub(*transport::Dial(Socket()));
    v1::StatusResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    auto st = stub->Status(&ctx, v1::StatusRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  std::optional<v1::NodeStatus> NodeStatus(const std::string& node) {
    const auto st = StatusLocal();
    for (const auto& n : st.nodes())
      if (n.node() == node) return n;
    return std::nullopt;
  }
  bool HasService(const std::string& name) { return server_->store().Get({"Service", "default", name}).has_value(); }

  TempDir dir_;
  std::unique_ptr<ControllerServer> server_;
};

// Item 1: over TCP, only an admin certificate reaches the Admin API.
TEST_F(AuthTest, AdminApiOverTcpNeedsAnAdminCertificate) {
  Start();
  ASSERT_TRUE(ApplyLocal(ServiceYaml("keep")).ok());
  struct Row {
    Client client;
    grpc::StatusCode code;
    const char* says;  // in the message (refusals by the controller)
  };
  const std::vector<Row> rows = {
      {Client::kPlaintext, grpc::StatusCode::UNAVAILABLE, ""},
      {Client::kNoCertificate, grpc::StatusCode::UNAUTHENTICATED, "needs an admin client certificate"},
      {Client::kNode2, grpc::StatusCode::PERMISSION_DENIED, "node node2 (spiffe://cluster.local/weft/node/node2)"},
      {Client::kOtherCaAdmin, grpc::StatusCode::UNAVAILABLE, ""},  // the handshake fails: not our CA
      {Client::kAdmin, grpc::StatusCode::OK, ""},  // last: it deletes "keep"
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(Name(row.client));
    auto stub = v1::Admin::NewStub(ChannelAs(row.client));
    for (const char* rpc : {"Apply", "Get", "Status", "CreateJoinToken", "Delete"}) {
      SCOPED_TRACE(rpc);
      grpc::Status st = CallAdmin(*stub, rpc);
      EXPECT_EQ(st.error_code(), row.code) << st.error_message();
      EXPECT_NE(st.error_message().find(row.says), std::string::npos) << st.error_message();
    }
    if (row.code != grpc::StatusCode::OK) {
      EXPECT_TRUE(HasService("keep")) << "a refused client deleted a Service";
      EXPECT_FALSE(HasService("attacker")) << "a refused client applied a Service";
    }
  }
  EXPECT_FALSE(HasService("keep"));
  EXPECT_TRUE(HasService("attacker"));
}

// Admin certificates are minted only on the root-only unix socket; the CSR's
// subject is never what the certificate says.
TEST_F(AuthTest, AdminCertificatesOnlyFromTheUnixSocket) {
  Start();
  auto key = pki::PrivateKey::Generate().value();
  v1::AdminCertificateRequest req;
  req.set_name("bob");
  req.set_csr_pem(pki::CertificateRequest::Create(key, "spiffe://cluster.local/weft/controller").value().ToPem());
  {
    auto stub = v1::Admin::NewStub(ChannelAs(Client::kAdmin));
    grpc::ClientContext ctx;
    v1::CertificateResponse resp;
    auto st = stub->IssueAdminCertificate(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
    EXPECT_NE(st.error_message().find("unix socket"), std::string::npos) << st.error_message();
  }
  auto stub = v1::Admin::NewStub(*transport::Dial(Socket()));
  grpc::ClientContext ctx;
  v1::CertificateResponse resp;
  auto st = stub->IssueAdminCertificate(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.spiffe_id(), "spiffe://cluster.local/weft/admin/bob");
  auto chain = pki::Certificate::ChainFromPem(resp.certificate_chain_pem()).value();
  EXPECT_TRUE(chain[0].Matches(key));
  EXPECT_EQ(chain[0].Subject(), "");
  auto bundle = pki::TrustBundle::FromPem(resp.trust_bundle_pem()).value();
  EXPECT_TRUE(bundle.VerifyIdentity(chain, resp.spiffe_id(), pki::Clock::now(), pki::Usage::kClient).ok());
  // And it works over TCP.
  credentials::Identity id{key, chain, bundle};
  auto tcp = v1::Admin::NewStub(weft::testing::TlsChannel(server_->tcp_target(), &id, bundle, ControllerSpiffe()));
  EXPECT_TRUE(CallAdmin(*tcp, "Status").ok());
  // Bad names and TTLs are refused.
  req.set_name("Bob!");
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub->IssueAdminCertificate(&ctx2, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.set_name("bob");
  req.set_ttl_seconds(30 * 24 * 3600);
  grpc::ClientContext ctx3;
  EXPECT_EQ(stub->IssueAdminCertificate(&ctx3, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// A stream's reader: the first message or the end status, with a deadline.
struct Attempt {
  bool got_message = false;
  grpc::Status status;
};
Attempt HelloAs(const std::shared_ptr<grpc::Channel>& ch, const std::string& node, bool then_nack) {
  auto stub = v1::ConfigDiscovery::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto stream = stub->Stream(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node(node);
  hello.mutable_hello()->set_agent_version("attacker");
  stream->Write(hello);
  if (then_nack) {
    v1::AgentMessage nack;
    nack.mutable_nack()->set_version(1);
    nack.mutable_nack()->set_error("forged NACK from an attacker");
    stream->Write(nack);
  }
  Attempt a;
  v1::ControllerMessage m;
  a.got_message = stream->Read(&m);
  if (a.got_message) ctx.TryCancel();
  a.status = stream->Finish();
  return a;
}

// Item 2: a client that says hello as node1 without node1's certificate gets
// nothing, displaces nothing and changes nothing in node1's status.
TEST_F(AuthTest, StreamServesOnlyTheNodeOfItsCertificate) {
  Start();
  ASSERT_TRUE(ApplyLocal(ServiceYaml("web") + "---\n" + WorkloadYaml("web-1", "10.0.0.1", "node1") + "---\n" +
                         WorkloadYaml("web-2", "10.0.0.2", "node2"))
                  .ok());
  // The real node1.
  auto node1 = v1::ConfigDiscovery::NewStub(ChannelAs(Client::kNode1));
  grpc::ClientContext ctx;
  auto stream = node1->Stream(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node("node1");
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage snap;
  ASSERT_TRUE(stream->Read(&snap));
  ASSERT_TRUE(snap.has_snapshot());
  ASSERT_EQ(snap.snapshot().local_workloads_size(), 1);
  EXPECT_EQ(snap.snapshot().local_workloads(0).name(), "web-1");
  v1::AgentMessage ack;
  ack.mutable_ack()->set_version(snap.version());
  ack.mutable_ack()->set_nonce(snap.nonce());
  ASSERT_TRUE(stream->Write(ack));
  ASSERT_TRUE(Eventually([&] { return NodeStatus("node1") && NodeStatus("node1")->state() == "SYNCED"; }));
  const auto before = *NodeStatus("node1");

  struct Row {
    Client client;
    grpc::StatusCode code;
    std::string says;
  };
  const std::vector<Row> rows = {
      {Client::kPlaintext, grpc::StatusCode::UNAVAILABLE, ""},
      {Client::kNoCertificate, grpc::StatusCode::UNAUTHENTICATED, "needs a node client certificate"},
      {Client::kNode2, grpc::StatusCode::PERMISSION_DENIED,
       "hello as node \"node1\" on a connection authenticated as node \"node2\""},
      {Client::kAdmin, grpc::StatusCode::PERMISSION_DENIED, "needs a node client certificate"},
      {Client::kOtherCaAdmin, grpc::StatusCode::UNAVAILABLE, ""},
  };
  for (const auto& row : rows) {
    for (bool nack : {false, true}) {
      SCOPED_TRACE(std::string(Name(row.client)) + (nack ? ", then a forged NACK" : ""));
      Attempt a = HelloAs(ChannelAs(row.client), "node1", nack);
      EXPECT_FALSE(a.got_message) << "received node1's config";
      EXPECT_EQ(a.status.error_code(), row.code) << a.status.error_message();
      EXPECT_NE(a.status.error_message().find(row.says), std::string::npos) << a.status.error_message();
    }
  }
  // node1 is untouched: same stream, still SYNCED, no NACK reason; node2 never said hello.
  auto after = *NodeStatus("node1");
  EXPECT_EQ(after.state(), "SYNCED");
  EXPECT_TRUE(after.connected());
  EXPECT_EQ(after.nack_reason(), "");
  EXPECT_EQ(after.agent_version(), before.agent_version());
  EXPECT_FALSE(NodeStatus("node2").has_value());
  EXPECT_EQ(server_->streams(), 1u);
  // ... and its stream still gets the next delta.
  ASSERT_TRUE(ApplyLocal(WorkloadYaml("web-3", "10.0.0.3", "node1")).ok());
  v1::ControllerMessage delta;
  ASSERT_TRUE(stream->Read(&delta));
  EXPECT_TRUE(delta.has_delta());
  ctx.TryCancel();
  stream->Finish();

  // node2's own hello is served (its own workloads only).
  Attempt own = HelloAs(ChannelAs(Client::kNode2), "node2", false);
  EXPECT_TRUE(own.got_message) << own.status.error_message();
}

// Join: a token is single-use, bound to its node, expiring, pins the CA, and
// is kept hashed. Each row goes through NodeIdentity.Join over TLS pinned to
// the CA, as weft-agent does.
TEST_F(AuthTest, JoinTokenTable) {
  Start();
  auto now = pki::Clock::now();
  auto valid = ca().CreateJoinToken("node1", 1h, now).value();
  auto expired = ca().CreateJoinToken("node1", 1h, now - 2h).value();
  auto node2 = ca().CreateJoinToken("node2", 1h, now).value();
  auto parsed = credentials::ParseJoinToken(valid.token).value();
  const std::string other_ca = credentials::FormatJoinToken(std::string(64, 'a'), parsed.id, parsed.secret);
  const std::string unknown = credentials::FormatJoinToken(parsed.ca_sha256, std::string(16, '0'), parsed.secret);
  const std::string wrong_secret = credentials::FormatJoinToken(parsed.ca_sha256, parsed.id, std::string(64, 'b'));

  transport::ClientTls tls;
  tls.present_identity = false;
  tls.server_spiffe_id = ControllerSpiffe();
  tls.pinned_ca_sha256 = ca().PinnedFingerprint();
  auto ch = transport::Dial(server_->tcp_target(), transport::TlsChannelCredentials(tls));
  ASSERT_TRUE(ch.ok());
  auto stub = v1::NodeIdentity::NewStub(*ch);
  auto key = pki::PrivateKey::Generate().value();
  const std::string csr = pki::CertificateRequest::Create(key, "node2").value().ToPem();

  struct Row {
    const char* name;
    std::string token, node, csr;
    grpc::StatusCode code;
    const char* says;
  };
  const std::vector<Row> rows = {
      {"malformed", "hello", "node1", csr, grpc::StatusCode::UNAUTHENTICATED, "malformed"},
      {"unknown id", unknown, "node1", csr, grpc::StatusCode::UNAUTHENTICATED, "unknown"},
      {"wrong secret", wrong_secret, "node1", csr, grpc::StatusCode::UNAUTHENTICATED, "unknown"},
      {"another CA's token", other_ca, "node1", csr, grpc::StatusCode::UNAUTHENTICATED, "made for another CA"},
      {"expired", expired.token, "node1", csr, grpc::StatusCode::UNAUTHENTICATED, "expired at"},
      {"other node's token", node2.token, "node1", csr, grpc::StatusCode::UNAUTHENTICATED,
       "is for node \"node2\", not \"node1\""},
      {"bad CSR (does not use the token up)", valid.token, "node1", "garbage", grpc::StatusCode::INVALID_ARGUMENT,
       "CSR"},
      {"bad node name", valid.token, "Node_1", csr, grpc::StatusCode::INVALID_ARGUMENT, "node name"},
      {"valid", valid.token, "node1", csr, grpc::StatusCode::OK, ""},
      {"replayed", valid.token, "node1", csr, grpc::StatusCode::UNAUTHENTICATED, "already used"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    v1::JoinRequest req;
    req.set_token(row.token);
    req.set_node(row.node);
    req.set_csr_pem(row.csr);
    v1::CertificateResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    auto st = stub->Join(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), row.code) << st.error_message();
    EXPECT_NE(st.error_message().find(row.says), std::string::npos) << st.error_message();
    if (st.ok()) {
      auto chain = pki::Certificate::ChainFromPem(resp.certificate_chain_pem()).value();
      EXPECT_TRUE(chain[0].Matches(key));
      EXPECT_EQ(resp.spiffe_id(), "spiffe://cluster.local/weft/node/node1") << "the CSR said node2";
      EXPECT_TRUE(pki::TrustBundle::FromPem(resp.trust_bundle_pem())
                      .value()
                      .VerifyIdentity(chain, resp.spiffe_id(), pki::Clock::now(), pki::Usage::kClient)
                      .ok());
    }
  }
  // Stored hashed: no secret in the store, its SHA-256 instead.
  auto* state = dynamic_cast<StateStore*>(&server_->store());
  ASSERT_NE(state, nullptr);
  bool hashed = false;
  const auto records = state->LoadState("join/").value();
  for (const auto& [k, v] : records) {
    EXPECT_EQ(v.find(parsed.secret), std::string::npos) << k;
    hashed = hashed || v.find(pki::Sha256Hex(parsed.secret)) != std::string::npos;
  }
  EXPECT_TRUE(hashed);
  // node2's token still works for node2.
  v1::JoinRequest req;
  req.set_token(node2.token);
  req.set_node("node2");
  req.set_csr_pem(csr);
  v1::CertificateResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub->Join(&ctx, req, &resp).ok());
}

// An impostor on the controller's address (its own self-signed CA, the
// controller's SPIFFE id): the joining client refuses it before sending the
// token, and says why.
class RecordingIdentity final : public v1::NodeIdentity::Service {
 public:
  grpc::Status Join(grpc::ServerContext*, const v1::JoinRequest* req, v1::CertificateResponse*) override {
    std::lock_guard lock(mu);
    tokens.push_back(req->token());
    return grpc::Status(grpc::StatusCode::INTERNAL, "impostor");
  }
  std::mutex mu;
  std::vector<std::string> tokens;
};

TEST_F(AuthTest, JoinRefusesAnImpostorBeforeSendingTheToken) {
  Start();
  auto token = ca().CreateJoinToken("node1", 1h, pki::Clock::now()).value();
  auto impostor_ca = pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), "cluster.local", 24h)
                         .value();
  auto impostor_id = weft::testing::IssueIdentity(impostor_ca, ControllerSpiffe(), pki::Usage::kServer);
  impostor_id.chain.push_back(impostor_ca.certificate());  // even with its CA in the chain
  RecordingIdentity svc;
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", transport::TlsServerCredentials(transport::StaticCertificates(impostor_id)),
                     &port);
  b.RegisterService(&svc);
  auto impostor = b.BuildAndStart();
  ASSERT_TRUE(impostor && port > 0);

  weft::testing::Rejections why;
  transport::ClientTls tls;
  tls.present_identity = false;
  tls.server_spiffe_id = ControllerSpiffe();
  tls.pinned_ca_sha256 = credentials::ParseJoinToken(token.token).value().ca_sha256;
  tls.on_reject = why.hook();
  auto ch = transport::Dial("127.0.0.1:" + std::to_string(port), transport::TlsChannelCredentials(tls));
  ASSERT_TRUE(ch.ok());
  v1::JoinRequest req;
  req.set_token(token.token);
  req.set_node("node1");
  req.set_csr_pem(pki::CertificateRequest::Create(pki::PrivateKey::Generate().value(), "").value().ToPem());
  v1::CertificateResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  auto st = v1::NodeIdentity::NewStub(*ch)->Join(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  {
    std::lock_guard lock(svc.mu);
    EXPECT_TRUE(svc.tokens.empty()) << "the token reached the impostor";
  }
  EXPECT_NE(why.all().find("no CA certificate with SHA-256 " + tls.pinned_ca_sha256), std::string::npos) << why.all();
  impostor->Shutdown();
}

TEST_F(AuthTest, RenewNeedsTheNodesOwnCertificate) {
  Start();
  auto csr = pki::CertificateRequest::Create(pki::PrivateKey::Generate().value(), "node2").value().ToPem();
  struct Row {
    Client client;
    grpc::StatusCode code;
  };
  for (const Row& row : std::vector<Row>{{Client::kNoCertificate, grpc::StatusCode::UNAUTHENTICATED},
                                         {Client::kAdmin, grpc::StatusCode::PERMISSION_DENIED},
                                         {Client::kNode1, grpc::StatusCode::OK}}) {
    SCOPED_TRACE(Name(row.client));
    auto stub = v1::NodeIdentity::NewStub(ChannelAs(row.client));
    v1::RenewRequest req;
    req.set_csr_pem(csr);
    v1::CertificateResponse resp;
    grpc::ClientContext ctx;
    auto st = stub->Renew(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), row.code) << st.error_message();
    if (st.ok()) EXPECT_EQ(resp.spiffe_id(), "spiffe://cluster.local/weft/node/node1") << "the CSR said node2";
  }
}

// weft.db holds the CA key; the socket is the Admin API: both are private.
TEST_F(AuthTest, SecretsAndTheSocketArePrivate) {
  Start();
  const std::string data = dir_.path() + "/data";
  EXPECT_EQ(Mode(data), 0700u);
  EXPECT_EQ(Mode(data + "/weft.db"), 0600u);
  EXPECT_EQ(Mode(data + "/tls"), 0700u);
  EXPECT_EQ(Mode(data + "/tls/key.pem"), 0600u);
  EXPECT_EQ(Mode(dir_.path() + "/run"), 0700u);
  struct stat st {};
  ASSERT_EQ(::lstat((dir_.path() + "/run/admin.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server_->Shutdown();
  server_.reset();

  // A shared directory for the socket (world-writable, sticky: /tmp-like) is refused.
  std::filesystem::create_directories(dir_.path() + "/shared");
  ASSERT_EQ(::chmod((dir_.path() + "/shared").c_str(), 01777), 0);
  auto o = Options();
  o.admin_socket = dir_.path() + "/shared/admin.sock";
  auto s = ControllerServer::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("a shared directory"), std::string::npos) << s.status().message();
}

// The CA is generated once and kept; --ca-cert/--ca-key issue from an
// organisation's CA instead; a stored CA of another trust domain is refused.
TEST_F(AuthTest, CaPersistsAndCanBeAnOrganisationsCa) {
  Start();
  const std::string fp = ca().PinnedFingerprint();
  server_->Shutdown();
  server_.reset();
  Start();
  EXPECT_EQ(ca().PinnedFingerprint(), fp) << "the CA changed across a restart";
  server_->Shutdown();
  server_.reset();

  auto o = Options();
  o.ca.trust_domain = "other.local";
  auto wrong = ControllerServer::Start(o);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("trust domain"), std::string::npos) << wrong.status().message();

  auto org = pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), "cluster.local", 24h).value();
  const std::string cert_file = dir_.path() + "/org-ca.pem", key_file = dir_.path() + "/org-ca.key";
  ASSERT_TRUE(sys::WriteFileAtomic(cert_file, org.certificate().ToPem(), 0644).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(key_file, org.key().ToPem(), 0644).ok());
  o = Options();
  o.ca.ca_cert_file = cert_file;
  o.ca.ca_key_file = key_file;
  auto loose = ControllerServer::Start(o);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos) << loose.status().message();
  ASSERT_EQ(::chmod(key_file.c_str(), 0600), 0);
  Start(o);
  EXPECT_EQ(ca().PinnedFingerprint(), org.certificate().Sha256Fingerprint());
  // A client trusting only the organisation's CA reaches the controller.
  auto admin = Admin("carol");
  auto stub = v1::Admin::NewStub(weft::testing::TlsChannel(server_->tcp_target(), &admin,
                                                           pki::TrustBundle({org.certificate()}), ControllerSpiffe()));
  EXPECT_TRUE(CallAdmin(*stub, "Status").ok());
}

}  // namespace
}  // namespace weft::controller
