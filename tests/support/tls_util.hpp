// Test identities and mutual-TLS channels (weft/pki.hpp, weft/transport.hpp):
// a client certificate from any CA, and a channel that presents it (or none)
// and verifies the server's SPIFFE id.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "weft/credentials.hpp"
#include "weft/pki.hpp"
#include "weft/transport.hpp"

namespace weft::testing {

// A key made here and a chain signed by `sign` (given the CSR's PEM).
inline Result<credentials::Identity> IdentityFromCsr(
    const std::function<Result<std::vector<pki::Certificate>>(const std::string& csr_pem)>& sign,
    const pki::TrustBundle& bundle) {
  auto key = pki::PrivateKey::Generate();
  if (!key.ok()) return key.status();
  auto csr = pki::CertificateRequest::Create(*key, "test");
  if (!csr.ok()) return csr.status();
  auto chain = sign(csr->ToPem());
  if (!chain.ok()) return chain.status();
  return credentials::Identity{*key, *chain, bundle};
}

// A certificate for `spiffe_id` straight from `ca`.
inline credentials::Identity IssueIdentity(const pki::CertificateAuthority& ca, const std::string& spiffe_id,
                                           pki::Usage usage = pki::Usage::kClient,
                                           std::chrono::seconds lifetime = std::chrono::hours(1)) {
  auto key = pki::PrivateKey::Generate().value();
  pki::IssueOptions o;
  o.uri_sans = {spiffe_id};
  if (usage != pki::Usage::kClient) o.ip_sans = {"127.0.0.1"};
  o.usage = usage;
  o.lifetime = lifetime;
  auto cert = ca.Issue(key, o).value();
  return credentials::Identity{key, {cert}, pki::TrustBundle(ca.Roots())};
}

// Collects the client's reasons for refusing a server.
struct Rejections {
  std::mutex mu;
  std::vector<std::string> reasons;
  std::function<void(const std::string&)> hook() {
    return [this](const std::string& why) {
      std::lock_guard lock(mu);
      reasons.push_back(why);
    };
  }
  std::string all() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& r : reasons) out += r + "\n";
    return out;
  }
};

// A channel of its own (no shared subchannel) to `target` over TLS: presents
// `id` (nullptr: no client certificate), trusts `bundle`, expects the server
// to be `server_id`.
inline std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const credentials::Identity* id,
                                                 const pki::TrustBundle& bundle, const std::string& server_id,
                                                 Rejections* rejections = nullptr) {
  transport::ClientTls tls;
  tls.certs = id ? transport::StaticCertificates(*id) : transport::StaticCertificates("", "", bundle.ToPem());
  tls.present_identity = id != nullptr;
  tls.server_spiffe_id = server_id;
  tls.roots = [bundle]() -> Result<pki::TrustBundle> { return bundle; };
  if (rejections) tls.on_reject = rejections->hook();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(transport::kMaxMessageBytes);
  args.SetMaxSendMessageSize(transport::kMaxMessageBytes);
  return grpc::CreateCustomChannel(target, transport::TlsChannelCredentials(tls), args);
}

}  // namespace weft::testing
