#include "controller/auth.hpp"

#include "weft/pki.hpp"
#include "weft/transport.hpp"

namespace weft::controller {

std::string Caller::Describe() const {
  switch (kind) {
    case Kind::kLocal: return "the unix socket";
    case Kind::kAdmin: return "admin " + name + " (" + spiffe_id + ") from " + address;
    case Kind::kNode: return "node " + name + " (" + spiffe_id + ") from " + address;
    case Kind::kAnonymous: return "a client without a certificate from " + address;
    case Kind::kOther:
      return (spiffe_id.empty() ? std::string("a client certificate") : spiffe_id) + " from " + address +
             (problem.empty() ? "" : " (" + problem + ")");
    case Kind::kUnknown: break;
  }
  return "an unauthenticated transport from " + address;
}

Caller Identify(const grpc::ServerContextBase& ctx, std::string_view td) {
  transport::Peer p = transport::PeerOf(ctx);
  Caller c;
  c.address = p.address;
  c.spiffe_id = p.spiffe_id;
  c.problem = p.problem;
  if (p.transport == transport::Peer::Transport::kLocal) {
    c.kind = Caller::Kind::kLocal;
    return c;
  }
  if (p.transport != transport::Peer::Transport::kTls) return c;
  if (p.spiffe_id.empty()) {
    c.kind = p.problem.empty() ? Caller::Kind::kAnonymous : Caller::Kind::kOther;
    return c;
  }
  auto id = pki::ParseWeftId(p.spiffe_id, td);
  if (!id.ok()) {
    c.kind = Caller::Kind::kOther;
    c.problem = id.status().message();
    return c;
  }
  c.name = id->name;
  c.kind = id->role == pki::Role::kAdmin  ? Caller::Kind::kAdmin
           : id->role == pki::Role::kNode ? Caller::Kind::kNode
                                          : Caller::Kind::kOther;
  return c;
}

namespace {

grpc::Status Refuse(const Caller& c, std::string_view rpc, const std::string& needs) {
  const bool anonymous = c.kind == Caller::Kind::kAnonymous || c.kind == Caller::Kind::kUnknown;
  return grpc::Status(anonymous ? grpc::StatusCode::UNAUTHENTICATED : grpc::StatusCode::PERMISSION_DENIED,
                      std::string(rpc) + ": refused for " + c.Describe() + ": needs " + needs);
}

}  // namespace

grpc::Status RequireAdmin(const Caller& c, std::string_view rpc, std::string_view td) {
  if (c.kind == Caller::Kind::kLocal || c.kind == Caller::Kind::kAdmin) return grpc::Status::OK;
  return Refuse(c, rpc,
                "an admin client certificate (" + pki::AdminId(td, "<name>") +
                    "; as root on the controller's host: weftctl admin-cert NAME)");
}

grpc::Status RequireLocal(const Caller& c, std::string_view rpc) {
  if (c.kind == Caller::Kind::kLocal) return grpc::Status::OK;
  return Refuse(c, rpc, "the controller's unix socket (root on the controller's host)");
}

grpc::Status RequireNode(const Caller& c, std::string_view rpc, std::string_view td, bool allow_local) {
  if (c.kind == Caller::Kind::kNode || (allow_local && c.kind == Caller::Kind::kLocal)) return grpc::Status::OK;
  return Refuse(c, rpc, "a node client certificate (" + pki::NodeId(td, "<node>") + ", from weft-agent --join-token-file)");
}

}  // namespace weft::controller
