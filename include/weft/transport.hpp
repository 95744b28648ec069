// The one place where Weft chooses gRPC transport settings: credentials,
// message size limits, keepalive, and parsing controller addresses.
//
// Credentials:
//  - TCP is TLS (gRPC's TLS credentials over OpenSSL 3; both Weft ends
//    negotiate TLS 1.3) with certificates from gRPC's CertificateProvider,
//    made from Weft's seam, credentials::CertificateSource (ProviderFor): a
//    credentials dir is watched (a renewed certificate is presented from the
//    next handshake). Workload certificates (the node proxy, next) come from
//    the same seam, presented by the proxy's own TLS. The server requests a client certificate and verifies it
//    against its trust bundle when one is presented (a node joining with a
//    token has none yet); what each RPC requires is the controller's to
//    decide from PeerOf(). A client verifies the server's chain against its
//    bundle (or, before it has one, a pinned CA fingerprint) and then its
//    SPIFFE id, never a host name.
//  - Unix sockets use gRPC's local credentials: the socket file's mode is
//    the access control.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>

#include "weft/credentials.hpp"
#include "weft/pki.hpp"
#include "weft/status.hpp"

namespace weft::transport {

// The largest gRPC message Weft sends or accepts, both directions, client and
// server (gRPC's default receive limit is 4 MiB). Sized for the big messages
// on purpose: an Admin Apply of a whole cluster's YAML (10,000 services with
// 100,000 WorkloadEntries is ~21 MB) and a node's full snapshot (~3.8 MB at
// that scale, growing linearly). Beyond it a call fails with
// RESOURCE_EXHAUSTED and a message naming this limit (see Dial).
inline constexpr int kMaxMessageBytes = 256 * 1024 * 1024;
// What the controller's server accepts in one message, from anyone (a client
// without a certificate included: the check runs before any handler). What it
// serves is small (agents' hellos, ACKs, CSRs) except an Admin apply, which
// config/limits.hpp caps at 32 MiB of YAML (kMaxRequestBytes); this leaves
// room for the request's framing. Sending (snapshots) keeps kMaxMessageBytes.
inline constexpr int kMaxServerReceiveBytes = 40 * 1024 * 1024;

// Applies the server-side settings (message limits: receive
// kMaxServerReceiveBytes, send kMaxMessageBytes) to a builder.
void ConfigureServer(grpc::ServerBuilder& builder);

// `status` with its message explained if it is gRPC's "message larger than
// max" (names kMaxMessageBytes and the sizes); otherwise unchanged. Dial's
// channels apply it to every call's status already.
grpc::Status ExplainLimit(const grpc::Status& status);

// TLS 1.3 only. gRPC 1.51's TLS credentials offer TLS 1.2 and 1.3 and have
// no public setter for the minimum; its TLS 1.2 cipher list comes from
// GRPC_SSL_CIPHER_SUITES, read once, when the first TLS credentials are used.
// This sets it to one suite that needs an RSA key: Weft's keys are ECDSA, so a
// TLS 1.2 peer has nothing to agree on, while TLS 1.3 keeps its own suites.
// Call from main() before any other thread starts (it is setenv).
void RestrictToTls13();

// ---- certificates: the provider seam ----
using CertificateProvider = grpc::experimental::CertificateProviderInterface;
// Fixed PEM. Without a key and chain: roots only (a client with no identity).
std::shared_ptr<CertificateProvider> StaticCertificates(const std::string& key_pem, const std::string& chain_pem,
                                                        const std::string& roots_pem);
std::shared_ptr<CertificateProvider> StaticCertificates(const credentials::Identity& id);
// A credentials dir (weft/credentials.hpp), re-read every `refresh`: a renewed
// certificate is presented from the next handshake on.
std::shared_ptr<CertificateProvider> WatchedCertificates(const credentials::Paths& paths,
                                                         std::chrono::seconds refresh);

// A credentials::CertificateSource as gRPC's provider: a credentials dir is
// watched (WatchedCertificates: renewals are presented from the next
// handshake); any other source is presented as it is now (Static).
Result<std::shared_ptr<CertificateProvider>> ProviderFor(const credentials::CertificateSource& source,
                                                         std::chrono::seconds refresh);

// ---- server ----
// TLS with `certs`' identity; a client certificate is requested and, when
// presented, must chain to `certs`' roots (else the handshake fails).
std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(std::shared_ptr<CertificateProvider> certs);
// A unix socket: local credentials (refused on anything but a unix socket).
std::shared_ptr<grpc::ServerCredentials> LocalServerCredentials();

// Who is calling, as the transport established it.
struct Peer {
  enum class Transport { kLocal, kTls, kOther } transport = Transport::kOther;
  std::string spiffe_id;  // kTls with a verified client certificate: its SPIFFE id, else ""
  std::string problem;    // why a presented certificate has no usable SPIFFE id
  std::string address;    // ctx.peer(): "ipv4:127.0.0.1:5555", "unix:..."
};
Peer PeerOf(const grpc::ServerContextBase& ctx);

// ---- client ----
struct ClientTls {
  // Roots (unless pinned_ca_sha256) and the identity to present (if any).
  std::shared_ptr<CertificateProvider> certs;
  bool present_identity = true;
  // The server must be exactly this SPIFFE id (the controller's).
  std::string server_spiffe_id;
  // The roots the server's chain must verify against, read at every
  // handshake (a renewal may replace them). When set, the chain is verified
  // here rather than by gRPC, so that every refusal reaches on_reject with
  // its reason (gRPC's own check fails the handshake without one).
  std::function<Result<pki::TrustBundle>()> roots;
  // Bootstrap, before the client has a bundle: the server's chain must
  // contain a CA certificate with this SHA-256 fingerprint, and its leaf must
  // verify against that CA. `certs` and `roots` are then not used for roots.
  std::string pinned_ca_sha256;
  // Called with the reason each time a server is refused (from a gRPC thread).
  std::function<void(const std::string&)> on_reject;
};
std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(const ClientTls& tls);

// Accepts "host:port", "[v6]:port", "unix:/path", "unix:///path" or a bare
// absolute path (a unix socket); returns the gRPC target string, or an error
// naming the address and what is wrong with it.
Result<std::string> GrpcTarget(const std::string& address);

// A channel to `address`: local credentials for a unix socket, `tls` for TCP
// (required: a TCP address without it is an error naming what to pass);
// message limits (kMaxMessageBytes both ways; an oversize message fails
// naming the limit) and keepalive settings that notice a dead controller
// within a few seconds.
Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                            std::shared_ptr<grpc::ChannelCredentials> tls = nullptr);
// True for "unix:..." and bare absolute paths.
bool IsUnixAddress(const std::string& address);

}  // namespace weft::transport
