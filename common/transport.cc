#include "weft/transport.hpp"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/client_interceptor.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "weft/pki.hpp"

namespace weft::transport {

namespace {

std::string Mib(long long bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  return std::to_string(bytes) + " bytes";
}

// Rewrites the status of every call made on a Dial channel (ExplainLimit).
class LimitInterceptor : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS)) {
      grpc::Status* st = methods->GetRecvStatus();
      if (st && !st->ok()) *st = ExplainLimit(*st);
    }
    methods->Proceed();
  }
};

class LimitInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new LimitInterceptor;
  }
};

// The client's check of the server, after the TLS handshake: its SPIFFE id
// (and, at bootstrap, its chain against the pinned CA). Replaces gRPC's
// host-name check: the controller is known by its SPIFFE id, whatever
// address the agent dials.
class SpiffeServerVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  SpiffeServerVerifier(std::string id, std::string pin, std::function<Result<pki::TrustBundle>()> roots,
                       std::function<void(const std::string&)> on_reject)
      : id_(std::move(id)), pin_(std::move(pin)), roots_(std::move(roots)), on_reject_(std::move(on_reject)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* req, std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    std::string why = Check(*req);
    if (why.empty()) {
      *sync_status = grpc::Status::OK;
    } else {
      why = "refused the server's certificate: " + why;
      if (on_reject_) on_reject_(why);
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
    }
    return true;  // synchronous
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::string Check(grpc::experimental::TlsCustomVerificationCheckRequest& req) const {
    if (pin_.empty() && !roots_) {  // gRPC verified the chain against the provider's roots
      auto uris = req.uri_names();
      if (uris.size() != 1)
        return "its certificate has " + std::to_string(uris.size()) + " URI SANs, expected exactly " + id_;
      std::string got(uris[0].data(), uris[0].size());
      if (got != id_) return "its certificate is " + got + ", expected " + id_;
      return "";
    }
    std::string pem(req.peer_cert_full_chain().data(), req.peer_cert_full_chain().size());
    auto chain = pki::Certificate::ChainFromPem(pem);
    if (!chain.ok()) return "its certificate chain: " + chain.status().message();
    pki::TrustBundle anchors;
    if (!pin_.empty()) {
      for (const auto& c : *chain)
        if (c.IsCa() && c.Sha256Fingerprint() == pin_) anchors = pki::TrustBundle({c});
      if (anchors.empty())
        return "its chain has no CA certificate with SHA-256 " + pin_ + " (the CA pinned by the join token)";
    } else {
      auto roots = roots_();
      if (!roots.ok()) return "our trust bundle: " + roots.status().message();
      anchors = std::move(*roots);
    }
    auto leaf = anchors.VerifyIdentity(*chain, id_, pki::Clock::now(), pki::Usage::kServer);
    return leaf.ok() ? "" : leaf.status().message();
  }

  std::string id_, pin_;
  std::function<Result<pki::TrustBundle>()> roots_;
  std::function<void(const std::string&)> on_reject_;
};

}  // namespace

void RestrictToTls13() { ::setenv("GRPC_SSL_CIPHER_SUITES", "AES256-GCM-SHA384", 1); }

std::shared_ptr<CertificateProvider> StaticCertificates(const std::string& key_pem, const std::string& chain_pem,
                                                        const std::string& roots_pem) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  if (!key_pem.empty() && !chain_pem.empty()) pairs.push_back({key_pem, chain_pem});
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(roots_pem, pairs);
}

Result<std::shared_ptr<CertificateProvider>> ProviderFor(const credentials::CertificateSource& source,
                                                         std::chrono::seconds refresh) {
  if (const credentials::Paths* dir = source.dir()) return WatchedCertificates(*dir, refresh);
  auto id = source.Current();
  if (!id.ok()) return id.status();
  return StaticCertificates(*id);
}

std::shared_ptr<CertificateProvider> StaticCertificates(const credentials::Identity& id) {
  return StaticCertificates(id.key.ToPem(), pki::ChainToPem(id.chain), id.bundle.ToPem());
}

std::shared_ptr<CertificateProvider> WatchedCertificates(const credentials::Paths& paths,
                                                         std::chrono::seconds refresh) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      paths.key(), paths.cert(), paths.ca(), static_cast<unsigned>(std::max<int64_t>(1, refresh.count())));
}

std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(std::shared_ptr<CertificateProvider> certs) {
  grpc::experimental::TlsServerCredentialsOptions o(std::move(certs));
  o.watch_root_certs();
  o.watch_identity_key_cert_pairs();
  // Requested and verified when presented; a joining node has none yet. Each
  // RPC then requires the identity it needs (the controller's PeerOf checks).
  o.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(o);
}

std::shared_ptr<grpc::ServerCredentials> LocalServerCredentials() {
  return grpc::experimental::LocalServerCredentials(UDS);
}

Peer PeerOf(const grpc::ServerContextBase& ctx) {
  Peer p;
  p.address = ctx.peer();
  auto ac = ctx.auth_context();
  if (!ac) return p;
  auto type = ac->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  std::string t = type.empty() ? "" : std::string(type[0].data(), type[0].size());
  // "local": gRPC's local credentials (not in its public headers).
  if (t == "local" && p.address.rfind("unix:", 0) == 0) {
    p.transport = Peer::Transport::kLocal;
    return p;
  }
  if (t != GRPC_TLS_TRANSPORT_SECURITY_TYPE && t != GRPC_SSL_TRANSPORT_SECURITY_TYPE) return p;
  p.transport = Peer::Transport::kTls;
  auto pem = ac->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return p;  // no client certificate
  auto cert = pki::Certificate::FromPem(std::string(pem[0].data(), pem[0].size()));
  if (!cert.ok()) {
    p.problem = cert.status().message();
    return p;
  }
  auto id = cert->SpiffeId();
  if (!id.ok()) {
    p.problem = id.status().message();
    return p;
  }
  p.spiffe_id = *id;
  return p;
}

std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(const ClientTls& tls) {
  grpc::experimental::TlsChannelCredentialsOptions o;
  if (tls.certs) o.set_certificate_provider(tls.certs);
  if (tls.certs) o.watch_root_certs();
  // Our verifier checks the chain (pinned CA or `roots`) and reports why it refuses.
  if (!tls.pinned_ca_sha256.empty() || tls.roots) o.set_verify_server_certs(false);
  if (tls.certs && tls.present_identity) o.watch_identity_key_cert_pairs();
  o.set_check_call_host(false);
  o.set_certificate_verifier(grpc::experimental::ExternalCertificateVerifier::Create<SpiffeServerVerifier>(
      tls.server_spiffe_id, tls.pinned_ca_sha256, tls.roots, tls.on_reject));
  return grpc::experimental::TlsCredentials(o);
}

bool IsUnixAddress(const std::string& address) {
  return address.rfind("unix:", 0) == 0 || (!address.empty() && address[0] == '/');
}

void ConfigureServer(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxServerReceiveBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
}

grpc::Status ExplainLimit(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return status;
  const std::string& m = status.error_message();
  // gRPC: "Received message larger than max (N vs. M)" / "Sent message larger than max (N vs. M)".
  auto at = m.find("message larger than max (");
  if (at == std::string::npos) return status;
  long long size = 0, limit = 0;
  if (std::sscanf(m.c_str() + at, "message larger than max (%lld vs. %lld)", &size, &limit) != 2) return status;
  std::string who = m.rfind("Sent", at) != std::string::npos ? "sending" : "receiving";
  if (limit == kMaxServerReceiveBytes)
    return grpc::Status(status.error_code(),
                        "gRPC message of " + std::to_string(size) + " bytes exceeds the limit of " + Mib(limit) +
                            " (the controller receives at most that, weft::transport::kMaxServerReceiveBytes; an "
                            "apply holds at most 32 MiB of YAML: split the input)",
                        status.error_details());
  std::string text = "gRPC message of " + std::to_string(size) + " bytes exceeds the limit of " + Mib(limit) +
                     " (" + who + "; Weft's limit is " + Mib(kMaxMessageBytes) +
                     ", weft::transport::kMaxMessageBytes";
  text += limit < kMaxMessageBytes ? "; the peer enforces a smaller one, gRPC's default is 4 MiB)"
                                   : "; split the input)";
  return grpc::Status(status.error_code(), text, status.error_details());
}

Result<std::string> GrpcTarget(const std::string& address) {
  if (address.empty()) return Status::Error("controller address: empty");
  if (address.rfind("unix:", 0) == 0) {
    std::string path = address.substr(5);
    while (path.rfind("//", 0) == 0) path = path.substr(1);
    if (path.empty() || path[0] != '/')
      return Status::Error("controller address \"" + address + "\": unix socket path must be absolute");
    return "unix:" + path;
  }
  if (address[0] == '/') return "unix:" + address;
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size())
    return Status::Error("controller address \"" + address + "\": expected host:port or unix:/path");
  std::string port = address.substr(colon + 1);
  for (char c : port)
    if (c < '0' || c > '9')
      return Status::Error("controller address \"" + address + "\": port \"" + port + "\" is not a number");
  int p = std::stoi(port.size() > 6 ? std::string("99999999") : port);
  if (p < 1 || p > 65535)
    return Status::Error("controller address \"" + address + "\": port " + port + " is out of range (1-65535)");
  return address;
}

Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                            std::shared_ptr<grpc::ChannelCredentials> tls) {
  auto target = GrpcTarget(address);
  if (!target.ok()) return target.status();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (target->rfind("unix:", 0) == 0) {
    creds = grpc::experimental::LocalCredentials(UDS);
  } else if (tls) {
    creds = std::move(tls);
  } else {
    return Status::Error("controller address \"" + address +
                             "\": TCP is mutual TLS: a client certificate, key and CA bundle are needed", EACCES);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<LimitInterceptorFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(*target, creds, args,
                                                                  std::move(interceptors));
}

}  // namespace weft::transport
