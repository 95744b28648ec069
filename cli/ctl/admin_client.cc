#include "cli/ctl/admin_client.hpp"

#include <cstdlib>
#include <thread>

#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/pki.hpp"
#include "weft/transport.hpp"

namespace weft::cli::ctl {

std::string DefaultCredentialsDir() {
  if (const char* d = std::getenv("WEFT_CREDENTIALS"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.weft/credentials";
}

namespace {

const char* kHowToGetOne =
    "get an admin certificate as root on the controller's host (weftctl admin-cert NAME --out DIR) and pass "
    "--credentials DIR (or --cert/--key/--ca)";

// The admin identity for a TCP controller; every problem is EACCES.
Result<credentials::Identity> LoadClientIdentity(const ClientTlsOptions& o) {
  const std::string dir = o.credentials_dir.empty() ? DefaultCredentialsDir() : o.credentials_dir;
  credentials::Paths p{dir};
  const std::string cert = o.cert.empty() ? p.cert() : o.cert;
  const std::string key = o.key.empty() ? p.key() : o.key;
  const std::string ca = o.ca.empty() ? p.ca() : o.ca;
  auto denied = [](const Status& st) { return Status::Error(st.message(), EACCES); };
  // credentials::Load reads fixed names; the files may be anywhere here.
  auto read = [&](const std::string& path, const char* what) -> Result<std::string> {
    auto text = sys::ReadSmallFile(path, pki::kMaxPemBytes);
    if (!text.ok())
      return Status::Error(std::string(what) + " " + path + ": " + text.status().message() + "; " + kHowToGetOne,
                           EACCES);
    return text;
  };
  auto key_pem = read(key, "client key");
  if (!key_pem.ok()) return key_pem.status();
  auto cert_pem = read(cert, "client certificate");
  if (!cert_pem.ok()) return cert_pem.status();
  auto ca_pem = read(ca, "CA bundle");
  if (!ca_pem.ok()) return ca_pem.status();
  auto k = pki::PrivateKey::FromPem(*key_pem);
  if (!k.ok()) return denied(k.status().Wrap(key));
  auto chain = pki::Certificate::ChainFromPem(*cert_pem);
  if (!chain.ok()) return denied(chain.status().Wrap(cert));
  auto bundle = pki::TrustBundle::FromPem(*ca_pem);
  if (!bundle.ok()) return denied(bundle.status().Wrap(ca));
  if (!chain->front().Matches(*k)) return Status::Error(cert + " is not the certificate of " + key, EACCES);
  if (chain->front().NotAfter() <= pki::Clock::now())
    return Status::Error("client certificate " + cert + " has expired; " + kHowToGetOne, EACCES);
  return credentials::Identity{std::move(*k), std::move(*chain), std::move(*bundle)};
}

}  // namespace

Result<AdminConn> ConnectAdmin(const std::string& address, const ClientTlsOptions& tls) {
  auto target = transport::GrpcTarget(address);
  if (!target.ok()) return Status::Error(target.status().message(), EINVAL);
  AdminConn c;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!transport::IsUnixAddress(address)) {
    auto id = LoadClientIdentity(tls);
    if (!id.ok())
      return Status::Error("controller " + address + " is TCP (mutual TLS): " + id.status().message(), EACCES);
    transport::ClientTls t;
    t.certs = transport::StaticCertificates(*id);
    t.server_spiffe_id = pki::ControllerId(tls.trust_domain);
    t.roots = [bundle = id->bundle]() -> Result<pki::TrustBundle> { return bundle; };
    t.on_reject = [mu = c.rejection_mu, why = c.rejection](const std::string& r) {
      std::lock_guard lock(*mu);
      *why = r;
    };
    creds = transport::TlsChannelCredentials(t);
  }
  auto ch = transport::Dial(address, creds);
  if (!ch.ok()) return ch.status();
  c.address = address;
  c.channel = *ch;
  c.stub = weft::v1::Admin::NewStub(c.channel);
  return c;
}

std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

bool IsRejectedInput(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return true;
    default:
      return false;
  }
}

int ExitCodeFor(grpc::StatusCode code) {
  if (code == grpc::StatusCode::OK) return 0;
  return IsRejectedInput(code) ? 1 : 2;
}

std::string DescribeRpcError(const grpc::Status& s, const std::string& what, const std::string& address) {
  if (IsRejectedInput(s.error_code())) return s.error_message();
  std::string code;
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: code = "UNAVAILABLE"; break;
    case grpc::StatusCode::DEADLINE_EXCEEDED: code = "DEADLINE_EXCEEDED"; break;
    case grpc::StatusCode::UNIMPLEMENTED: code = "UNIMPLEMENTED"; break;
    case grpc::StatusCode::INTERNAL: code = "INTERNAL"; break;
    case grpc::StatusCode::PERMISSION_DENIED: code = "PERMISSION_DENIED"; break;
    case grpc::StatusCode::UNAUTHENTICATED: code = "UNAUTHENTICATED"; break;
    default: code = "code " + std::to_string(static_cast<int>(s.error_code())); break;
  }
  std::string msg = what + ": controller " + address + ": " + code + ": " + s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    msg += " (is weft-controller running? choose it with --controller or WEFT_CONTROLLER";
    if (!transport::IsUnixAddress(address))
      msg += "; over TCP the controller must also accept our certificate: is it from its CA?";
    msg += ")";
  }
  return msg;
}

Status WaitControllerReady(AdminConn& conn, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  grpc::Status last;
  for (;;) {
    auto ctx = Context(std::chrono::milliseconds(1000));
    weft::v1::StatusRequest req;
    weft::v1::StatusResponse resp;
    last = conn.stub->Status(ctx.get(), req, &resp);
    if (last.ok()) return Status::Ok();
    if (std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Error(DescribeRpcError(last, "wait for the controller", conn.address));
}

}  // namespace weft::cli::ctl
