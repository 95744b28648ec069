// The controller's certificate authority and the node join tokens.
//
// The CA is ECDSA P-256. Generated once and kept in the store (StateStore
// records pki/ca.crt and pki/ca.key in weft.db's `state` table; the data dir
// is 0700 and weft.db 0600), or an organisation's CA from --ca-cert/--ca-key
// (files; the key must not be readable by others; --ca-cert may carry the
// CA's issuers after it).
//
// Identities it issues (weft/pki.hpp):
//   controller  spiffe://<td>/weft/controller   serverAuth, + DNS/IP SANs of the listen address and --server-san
//   node        spiffe://<td>/weft/node/<node>  clientAuth, from the node's CSR (Join / Renew)
//   admin       spiffe://<td>/weft/admin/<name> clientAuth, from weftctl's CSR (Admin.IssueAdminCertificate)
//
// Join tokens: `weft1.<ca sha256>.<id>.<secret>`. The controller keeps only
// SHA-256(secret) under state key join/<id>, with the node, the expiry and,
// once used, when and by whom. A token is single-use (ConsumeJoinToken marks
// it used under a mutex and in one store write before any certificate is
// issued), bound to its node, and expires. The CA fingerprint lets the agent
// verify the controller before it sends the secret.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controller/store.hpp"
#include "weft/credentials.hpp"
#include "weft/pki.hpp"
#include "weft/status.hpp"

namespace weft::controller {

struct CaOptions {
  std::string trust_domain = "cluster.local";
  std::string ca_cert_file;  // both or neither: an organisation's CA
  std::string ca_key_file;
  std::chrono::seconds ca_lifetime{10LL * 365 * 24 * 3600};  // a generated root
  std::chrono::seconds node_cert_ttl{24 * 3600};
  std::chrono::seconds server_cert_ttl{7 * 24 * 3600};
  // The time certificates are issued at and tokens expire by (weft/clock.hpp);
  // nullptr: the system clock. Must outlive the CA.
  const Clock* clock = nullptr;
};

inline constexpr std::chrono::seconds kDefaultJoinTokenTtl{3600};
inline constexpr std::chrono::seconds kDefaultAdminCertTtl{24 * 3600};
inline constexpr std::chrono::seconds kMaxJoinTokenTtl{7 * 24 * 3600};
inline constexpr std::chrono::seconds kMaxAdminCertTtl{7 * 24 * 3600};
inline constexpr size_t kMaxCsrBytes = 16 * 1024;

struct JoinToken {
  std::string token;  // the whole secret string, shown once
  std::string id;
  std::string node;
  pki::TimePoint expires;
};

class ClusterCa {
 public:
  // `state` must outlive the CA. Errors name the file or record.
  static Result<std::unique_ptr<ClusterCa>> Open(StateStore& state, const CaOptions& opts);

  const std::string& trust_domain() const { return opts_.trust_domain; }
  const CaOptions& options() const { return opts_; }
  const Clock& clock() const { return opts_.clock ? *opts_.clock : SystemClock(); }
  pki::TrustBundle Bundle() const;
  // SHA-256 of the root the tokens pin (the first root of the bundle).
  std::string PinnedFingerprint() const;

  // The controller's serving certificate for `key`: its SPIFFE id plus `sans`
  // (IP literals become IP SANs, anything else a DNS SAN; each validated).
  Result<std::vector<pki::Certificate>> IssueServer(const pki::PrivateKey& key, const std::vector<std::string>& sans) const;
  // A node's or an admin's certificate chain from a CSR (PEM, bounded).
  Result<std::vector<pki::Certificate>> IssueNode(const std::string& node, std::string_view csr_pem) const;
  Result<std::vector<pki::Certificate>> IssueAdmin(const std::string& name, std::string_view csr_pem,
                                                   std::chrono::seconds ttl) const;

  Result<JoinToken> CreateJoinToken(const std::string& node, std::chrono::seconds ttl, pki::TimePoint now);
  // Checks `token` for `node` at `now` and marks it used. Errors (EACCES) say
  // why: malformed, another CA, unknown, already used, expired, other node.
  Status ConsumeJoinToken(std::string_view token, const std::string& node, pki::TimePoint now);

 private:
  ClusterCa(StateStore& state, CaOptions opts, pki::CertificateAuthority ca)
      : state_(state), opts_(std::move(opts)), ca_(std::move(ca)) {}
  Result<std::vector<pki::Certificate>> IssueClient(const std::string& spiffe_id, std::string_view csr_pem,
                                                    std::chrono::seconds ttl) const;

  StateStore& state_;
  const CaOptions opts_;
  const pki::CertificateAuthority ca_;
  std::mutex tokens_mu_;  // create / consume: one at a time (single use)
};

}  // namespace weft::controller
