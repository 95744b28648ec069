// Issue 9, item 1, end to end: the real weft-controller and weftctl. Before,
// `runuser -u nobody -- weftctl --controller 127.0.0.1:PORT delete
// authorizationpolicy X` succeeded (plaintext Admin over TCP). Now every row
// but an admin certificate is refused and the policy stays. Needs root (to
// run commands as nobody, to chown): skips without it, fails under CI=true.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/test_util.hpp"
#include "tests/support/tls_util.hpp"
#include "weft/credentials.hpp"
#include "weft/pki.hpp"
#include "weft/sys.hpp"
#include "weft/transport.hpp"
#include "weft/v1/identity.grpc.pb.h"

namespace weft {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Out {
  int rc = -1;
  std::string text;  // stdout + stderr
};

Out RunCmd(const std::vector<std::string>& argv) {
  Out o;
  std::string out;
  auto rc = sys::RunCommand(argv, &out);
  o.rc = rc.ok() ? *rc : -1;
  o.text = out;
  return o;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class CtlAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (weft::testing::InCi()) FAIL() << "needs root (runuser, chown); CI=true forbids skipping";
      GTEST_SKIP() << "needs root";
    }
    char tmpl[] = "/tmp/weft-ctlauth-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0755);  // nobody may enter; the controller's own dirs stay 0700
    sock_ = dir_ + "/run/admin.sock";
    tcp_ = "127.0.0.1:" + std::to_string(FreePort());
    auto pid = sys::Spawn({WEFT_CONTROLLER_BIN, "--data-dir", dir_ + "/data", "--init", "--listen", tcp_, "--admin-socket", sock_},
                          {.log_path = dir_ + "/controller.log"});
    ASSERT_TRUE(pid.ok()) << pid.status().message();
    pid_ = *pid;
    for (auto until = std::chrono::steady_clock::now() + 15s; std::chrono::steady_clock::now() < until;) {
      if (Root({"status"}).rc == 0) break;
      std::this_thread::sleep_for(50ms);
    }
    std::ofstream(dir_ + "/ap.yaml") << "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                                        "metadata: {name: deny-all, namespace: default}\nspec: {}\n";
    auto applied = Root({"apply", "-f", dir_ + "/ap.yaml"});
    ASSERT_EQ(applied.rc, 0) << applied.text << weft::testing::ReadFile(dir_ + "/controller.log");
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // weftctl as root on the unix socket.
  Out Root(std::vector<std::string> args) {
    args.insert(args.begin(), WEFT_WEFTCTL);
    args.insert(args.end(), {"--controller", "unix://" + sock_});
    return RunCmd(args);
  }
  bool PolicyThere() {
    auto o = Root({"get", "authorizationpolicy", "deny-all"});
    return o.rc == 0;
  }
  // A credentials dir owned by `user`, holding `id`.
  std::string CredsFor(const credentials::Identity& id, const std::string& name, const char* user) {
    std::string d = dir_ + "/" + name;
    credentials::Paths p{d};
    EXPECT_TRUE(sys::MakePrivateDir(d).ok());
    EXPECT_TRUE(credentials::WriteKey(p, id.key).ok());
    EXPECT_TRUE(credentials::WriteCertificates(p, id.chain, id.bundle).ok());
    passwd* pw = ::getpwnam(user);
    for (const auto& f : {d, p.key(), p.cert(), p.ca()}) EXPECT_EQ(::chown(f.c_str(), pw->pw_uid, pw->pw_gid), 0);
    return d;
  }
  // A node certificate from the real controller, through a join token.
  credentials::Identity NodeIdentity(const std::string& node) {
    auto tok = Root({"node", "join-token", node});
    EXPECT_EQ(tok.rc, 0) << tok.text;
    std::string token = tok.text.substr(0, tok.text.find('\n'));
    auto parsed = credentials::ParseJoinToken(token);
    EXPECT_TRUE(parsed.ok()) << tok.text;
    transport::ClientTls tls;
    tls.present_identity = false;
    tls.server_spiffe_id = pki::ControllerId("cluster.local");
    tls.pinned_ca_sha256 = parsed->ca_sha256;
    auto key = pki::PrivateKey::Generate().value();
    v1::JoinRequest req;
    req.set_token(token);
    req.set_node(node);
    req.set_csr_pem(pki::CertificateRequest::Create(key, node).value().ToPem());
    v1::CertificateResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    auto st = v1::NodeIdentity::NewStub(*transport::Dial(tcp_, transport::TlsChannelCredentials(tls)))
                  ->Join(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {key, pki::Certificate::ChainFromPem(resp.certificate_chain_pem()).value(),
            pki::TrustBundle::FromPem(resp.trust_bundle_pem()).value()};
  }

  std::string dir_, sock_, tcp_;
  pid_t pid_ = 0;
};

TEST_F(CtlAuth, OnlyAnAdminCertificateDeletesOverTcp) {
  auto impostor_ca =
      pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), "cluster.local", 24h).value();
  auto forged = weft::testing::IssueIdentity(impostor_ca, pki::AdminId("cluster.local", "root"));
  const std::string forged_dir = CredsFor(forged, "forged", "nobody");
  const std::string node_dir = CredsFor(NodeIdentity("node1"), "node1", "root");

  const std::vector<std::string> del = {WEFT_WEFTCTL, "--controller", tcp_, "delete", "authorizationpolicy",
                                        "deny-all"};
  auto with = [&](std::vector<std::string> head, std::vector<std::string> tail = {}) {
    head.insert(head.end(), del.begin(), del.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  struct Row {
    const char* who;
    std::vector<std::string> argv;
    const char* says;
  };
  const std::vector<Row> rows = {
      {"nobody, no certificate", with({"runuser", "-u", "nobody", "--"}), "is TCP (mutual TLS)"},
      {"nobody, a self-made admin certificate", with({"runuser", "-u", "nobody", "--"}, {"--credentials", forged_dir}),
       "UNAVAILABLE"},
      {"nobody on the unix socket",
       {"runuser", "-u", "nobody", "--", WEFT_WEFTCTL, "--controller", "unix://" + sock_, "delete",
        "authorizationpolicy", "deny-all"},
       "UNAVAILABLE"},
      {"nobody asking for an admin certificate",
       {"runuser", "-u", "nobody", "--", WEFT_WEFTCTL, "--controller", "unix://" + sock_, "admin-cert", "mallory",
        "--out", "/tmp/weft-ctlauth-nobody-" + std::to_string(::getpid())},
       ""},
      {"root without an admin certificate", with({"env", "-u", "WEFT_CREDENTIALS", "HOME=/nonexistent"}),
       "weftctl admin-cert NAME"},
      {"root with a node certificate", with({}, {"--credentials", node_dir}), "PERMISSION_DENIED"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.who);
    auto o = RunCmd(row.argv);
    EXPECT_NE(o.rc, 0) << o.text;
    EXPECT_NE(o.text.find(row.says), std::string::npos) << o.text;
    EXPECT_TRUE(PolicyThere()) << "deleted by " << row.who;
  }
  fs::remove_all("/tmp/weft-ctlauth-nobody-" + std::to_string(::getpid()));

  // The admin certificate: from the unix socket (root), then over TCP.
  auto tcp_cert = RunCmd({WEFT_WEFTCTL, "--controller", tcp_, "--credentials", node_dir, "admin-cert", "alice"});
  EXPECT_EQ(tcp_cert.rc, 1) << tcp_cert.text;
  EXPECT_NE(tcp_cert.text.find("unix socket is needed"), std::string::npos) << tcp_cert.text;
  const std::string admin_dir = dir_ + "/alice";
  auto cert = Root({"admin-cert", "alice", "--out", admin_dir});
  ASSERT_EQ(cert.rc, 0) << cert.text;
  EXPECT_NE(cert.text.find("spiffe://cluster.local/weft/admin/alice"), std::string::npos) << cert.text;
  struct stat st {};
  ASSERT_EQ(::stat((admin_dir + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto ok = RunCmd(with({}, {"--credentials", admin_dir}));
  EXPECT_EQ(ok.rc, 0) << ok.text;
  EXPECT_FALSE(PolicyThere());
  // --cert/--key/--ca work as the dir does.
  auto status = RunCmd({WEFT_WEFTCTL, "--controller", tcp_, "--cert", admin_dir + "/cert.pem", "--key",
                     admin_dir + "/key.pem", "--ca", admin_dir + "/ca.pem", "status"});
  EXPECT_EQ(status.rc, 0) << status.text;
}

// The listener speaks TLS 1.3 and nothing older (transport::RestrictToTls13).
TEST_F(CtlAuth, ListenerSpeaksOnlyTls13) {
  auto s_client = [&](const std::string& extra) {
    return RunCmd({"sh", "-c", "timeout 10 openssl s_client -connect " + tcp_ + " -alpn h2 -brief " + extra +
                                   " </dev/null 2>&1"});
  };
  auto v13 = s_client("");
  EXPECT_NE(v13.text.find("Protocol version: TLSv1.3"), std::string::npos) << v13.text;
  auto v12 = s_client("-tls1_2");
  EXPECT_EQ(v12.text.find("CONNECTION ESTABLISHED"), std::string::npos) << v12.text;
}

}  // namespace
}  // namespace weft
