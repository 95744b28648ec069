#include "controller/identity_service.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "controller/auth.hpp"
#include "weft/v1/identity.grpc.pb.h"

namespace weft::controller {

namespace {

grpc::Status Fill(const Result<std::vector<pki::Certificate>>& chain, const pki::TrustBundle& bundle,
                  v1::CertificateResponse* out) {
  if (!chain.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, chain.status().message());
  out->set_certificate_chain_pem(pki::ChainToPem(*chain));
  out->set_trust_bundle_pem(bundle.ToPem());
  out->set_not_after_unix(
      std::chrono::duration_cast<std::chrono::seconds>(chain->front().NotAfter().time_since_epoch()).count());
  auto id = chain->front().SpiffeId();
  out->set_spiffe_id(id.ok() ? *id : "");
  return grpc::Status::OK;
}

}  // namespace

struct IdentityService::Impl : public v1::NodeIdentity::CallbackService {
  explicit Impl(ClusterCa& c) : ca(c) {}

  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* ctx, const v1::JoinRequest* req,
                                 v1::CertificateResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    r->Finish(DoJoin(*ctx, *req, resp));
    return r;
  }

  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* ctx, const v1::RenewRequest* req,
                                  v1::CertificateResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    r->Finish(DoRenew(*ctx, *req, resp));
    return r;
  }

  grpc::Status DoJoin(const grpc::CallbackServerContext& ctx, const v1::JoinRequest& req,
                      v1::CertificateResponse* resp) {
    const std::string from = ctx.peer();
    if (Status st = pki::ValidateName("node name", req.node()); !st.ok())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Join: " + st.message());
    // The CSR first: a token is not used up by a request that cannot succeed.
    if (req.csr_pem().size() > kMaxCsrBytes)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Join: CSR larger than " + std::to_string(kMaxCsrBytes));
    if (auto csr = pki::CertificateRequest::FromPem(req.csr_pem()); !csr.ok())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Join: " + csr.status().message());
    if (Status st = ca.ConsumeJoinToken(req.token(), req.node(), ca.clock().Now()); !st.ok()) {
      spdlog::warn("Join refused for node {} from {}: {}", req.node(), from, st.message());
      return grpc::Status(st.err() == EACCES ? grpc::StatusCode::UNAUTHENTICATED : grpc::StatusCode::INTERNAL,
                          "Join: " + st.message());
    }
    auto chain = ca.IssueNode(req.node(), req.csr_pem());
    grpc::Status st = Fill(chain, ca.Bundle(), resp);
    if (st.ok()) spdlog::info("node {} joined from {}: certificate {} until {}", req.node(), from, resp->spiffe_id(),
                              resp->not_after_unix());
    return st;
  }

  grpc::Status DoRenew(const grpc::CallbackServerContext& ctx, const v1::RenewRequest& req,
                       v1::CertificateResponse* resp) {
    Caller who = Identify(ctx, ca.trust_domain());
    if (grpc::Status st = RequireNode(who, "NodeIdentity.Renew", ca.trust_domain(), /*allow_local=*/false); !st.ok())
      return st;
    grpc::Status st = Fill(ca.IssueNode(who.name, req.csr_pem()), ca.Bundle(), resp);
    if (st.ok()) spdlog::info("node {} renewed its certificate until {}", who.name, resp->not_after_unix());
    return st;
  }

  ClusterCa& ca;
};

IdentityService::IdentityService(ClusterCa& ca) : impl_(std::make_unique<Impl>(ca)) {}
IdentityService::~IdentityService() = default;
grpc::Service* IdentityService::service() { return impl_.get(); }

}  // namespace weft::controller
