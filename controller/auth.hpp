// Who may call what on the controller (per RPC):
//
//   RPC                               unix socket (root-only)   TCP (mutual TLS)
//   ConfigDiscovery.Stream            yes (any node)            node certificate; serves that node only
//   NodeIdentity.Join                 token                     token (no client certificate needed)
//   NodeIdentity.Renew                -                         node certificate (renews that node)
//   Admin.* (apply, get, status, ...) yes                       admin certificate
//   Admin.CreateJoinToken             yes                       admin certificate
//   Admin.IssueAdminCertificate       yes                       no (an admin certificate cannot mint another)
//
// The transport verified the client's chain against the CA's bundle
// (weft::transport::TlsServerCredentials); Identify reads its SPIFFE id.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

namespace weft::controller {

struct Caller {
  enum class Kind {
    kLocal,      // the root-only unix socket
    kAdmin,      // TLS, spiffe://<td>/weft/admin/<name>
    kNode,       // TLS, spiffe://<td>/weft/node/<name>
    kAnonymous,  // TLS without a client certificate
    kOther,      // TLS with another identity (the controller's, a workload's, another trust domain's)
    kUnknown,    // neither transport (cannot happen with our listeners)
  } kind = Kind::kUnknown;
  std::string name;       // admin or node name
  std::string spiffe_id;  // "" unless a certificate was presented
  std::string address;    // the peer address
  std::string problem;    // why a presented certificate is not a Weft identity
  // "node node1 (spiffe://...) from ipv4:127.0.0.1:4242", "the unix socket", ...
  std::string Describe() const;
};

Caller Identify(const grpc::ServerContextBase& ctx, std::string_view trust_domain);

// OK for the unix socket and admin certificates; else UNAUTHENTICATED (no
// certificate) or PERMISSION_DENIED (another identity), naming the RPC, who
// called and what it needs.
grpc::Status RequireAdmin(const Caller& c, std::string_view rpc, std::string_view trust_domain);
// OK only for the unix socket.
grpc::Status RequireLocal(const Caller& c, std::string_view rpc);
// ConfigDiscovery.Stream / NodeIdentity.Renew: OK for a node certificate (and
// the unix socket if allow_local), else UNAUTHENTICATED / PERMISSION_DENIED.
grpc::Status RequireNode(const Caller& c, std::string_view rpc, std::string_view trust_domain, bool allow_local);

}  // namespace weft::controller
