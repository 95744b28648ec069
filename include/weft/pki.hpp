// weft_pki: the X.509 pieces of Weft's identities, on OpenSSL 3.
//
// Keys are ECDSA P-256, the only kind Weft generates, signs for or accepts
// in a CSR. Every OpenSSL object (EVP_PKEY, X509, X509_REQ, BIO, stores) has
// an owner (std::shared_ptr / std::unique_ptr with its free function), so a
// failure half-way leaks nothing. Errors are weft::Status with the step and
// OpenSSL's reason ("parse certificate PEM: no start line").
//
// What a CA here does and does not trust:
//  - Sign() takes only the public key of a CSR (after checking the CSR's own
//    signature, i.e. that the requester holds the key). The subject, SANs and
//    extensions come from IssueOptions, never from the CSR.
//  - Verify() checks a chain against a TrustBundle that may hold several
//    roots (root rotation: old and new root side by side), at a given time
//    (injected: tests check expiry without waiting).
//
// Weft's identities are SPIFFE ids (one URI SAN per leaf):
//   spiffe://<trust-domain>/weft/controller
//   spiffe://<trust-domain>/weft/node/<node>
//   spiffe://<trust-domain>/weft/admin/<name>
// (workloads, in a later issue: spiffe://<trust-domain>/ns/<ns>/sa/<sa>).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weft/clock.hpp"
#include "weft/status.hpp"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;
typedef struct X509_req_st X509_REQ;

namespace weft::pki {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Largest PEM input read (a bundle of a few roots, a chain, a CSR): anything
// bigger is refused before OpenSSL sees it.
inline constexpr size_t kMaxPemBytes = 256 * 1024;

// Lowercase hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);
// `bytes` random bytes (OpenSSL's CSPRNG) as lowercase hex; "" if it fails.
std::string RandomHex(size_t bytes);
// Constant-time equality of two strings of the same length (false otherwise).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class PrivateKey {
 public:
  static Result<PrivateKey> Generate();  // ECDSA P-256
  // PKCS#8 or traditional EC PEM, unencrypted; must be P-256.
  static Result<PrivateKey> FromPem(std::string_view pem);
  std::string ToPem() const;  // PKCS#8
  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit PrivateKey(std::shared_ptr<EVP_PKEY> k) : key_(std::move(k)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

class Certificate {
 public:
  // The first certificate of `pem` (FromPem) or all of them, in order (ChainFromPem; at least one).
  static Result<Certificate> FromPem(std::string_view pem);
  static Result<std::vector<Certificate>> ChainFromPem(std::string_view pem);
  static Result<Certificate> FromDer(std::string_view der);

  std::string ToPem() const;
  std::string ToDer() const;
  std::string Sha256Fingerprint() const;  // lowercase hex SHA-256 of the DER
  std::string Subject() const;            // RFC 2253 one-liner
  std::string Issuer() const;
  std::vector<std::string> UriSans() const;
  std::vector<std::string> DnsSans() const;
  std::vector<std::string> IpSans() const;  // textual: "127.0.0.1", "::1"
  // The SPIFFE id: the leaf's one URI SAN, which must be a valid spiffe:// URI.
  Result<std::string> SpiffeId() const;
  TimePoint NotBefore() const;
  TimePoint NotAfter() const;
  bool IsCa() const;
  bool SelfSigned() const;
  bool Matches(const PrivateKey& key) const;  // same public key
  X509* get() const { return cert_.get(); }

 private:
  explicit Certificate(std::shared_ptr<X509> c) : cert_(std::move(c)) {}
  friend class CertificateAuthority;
  std::shared_ptr<X509> cert_;
};

std::string ChainToPem(const std::vector<Certificate>& chain);

class CertificateRequest {
 public:
  // A CSR for `key` (signed by it). The subject is informative: issuers ignore it.
  static Result<CertificateRequest> Create(const PrivateKey& key, std::string_view common_name);
  // Parses and checks the self-signature; the key must be P-256.
  static Result<CertificateRequest> FromPem(std::string_view pem);
  std::string ToPem() const;
  X509_REQ* get() const { return req_.get(); }

 private:
  explicit CertificateRequest(std::shared_ptr<X509_REQ> r) : req_(std::move(r)) {}
  std::shared_ptr<X509_REQ> req_;
};

enum class Usage { kClient, kServer, kServerAndClient };

struct IssueOptions {
  std::string common_name;            // informative only
  std::vector<std::string> uri_sans;  // the SPIFFE id first
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;  // textual IPv4 / IPv6
  std::chrono::seconds lifetime{24 * 3600};
  // Default (epoch): valid from now - min(5 minutes, lifetime / 10) (a peer
  // whose clock is a little behind accepts a certificate issued just now)
  // until now + lifetime. Given: from not_before until not_before + lifetime.
  TimePoint not_before{};
  Usage usage = Usage::kClient;
  // "now" for the default validity (weft/clock.hpp); nullptr: the system clock.
  const weft::Clock* clock = nullptr;
};

// The issuing CA and its key. `chain` is what a leaf it issues is sent with:
// the CA certificate and any intermediates above it (not the root, which
// peers have in their bundle).
class CertificateAuthority {
 public:
  // A self-signed root: P-256, CA:TRUE pathlen 0, keyCertSign + cRLSign,
  // URI SAN spiffe://<trust_domain>.
  static Result<CertificateAuthority> CreateRoot(const PrivateKey& key, std::string_view trust_domain,
                                                 std::chrono::seconds lifetime, TimePoint not_before = {});
  // An existing CA: `cert_pem` starts with the issuing certificate, followed by
  // its issuers (optional); the key must match and the certificate be a CA.
  static Result<CertificateAuthority> Load(std::string_view cert_pem, std::string_view key_pem);

  const Certificate& certificate() const { return chain_.front(); }
  const PrivateKey& key() const { return key_; }
  // The roots of this CA's chain (the self-signed certificates of it; the CA
  // itself if it is a root): what peers trust.
  std::vector<Certificate> Roots() const;
  // Issuing certificate + intermediates, without a self-signed root.
  std::vector<Certificate> IssuerChain() const;

  // Signs the CSR's public key with exactly `opts` (the CSR's signature is checked).
  Result<Certificate> Sign(const CertificateRequest& csr, const IssueOptions& opts) const;
  // Signs `subject`'s public key (a key this process holds, e.g. the controller's own).
  Result<Certificate> Issue(const PrivateKey& subject, const IssueOptions& opts) const;

 private:
  CertificateAuthority(std::vector<Certificate> chain, PrivateKey key) : chain_(std::move(chain)), key_(std::move(key)) {}
  Result<Certificate> IssueFor(EVP_PKEY* pub, const IssueOptions& opts) const;
  std::vector<Certificate> chain_;
  PrivateKey key_;
};

// The roots a peer's chain must end in; more than one during a root rotation.
class TrustBundle {
 public:
  TrustBundle() = default;
  explicit TrustBundle(std::vector<Certificate> roots) : roots_(std::move(roots)) {}
  static Result<TrustBundle> FromPem(std::string_view pem);
  std::string ToPem() const;
  const std::vector<Certificate>& roots() const { return roots_; }
  bool empty() const { return roots_.empty(); }
  bool Contains(std::string_view sha256_fingerprint) const;

  // `chain` = leaf, then intermediates. Signatures, validity at `at`, CA
  // constraints, and the extended key usage for `usage`. Returns the leaf.
  Result<Certificate> Verify(const std::vector<Certificate>& chain, TimePoint at, Usage usage) const;
  // Verify, then the leaf's SPIFFE id must be exactly `spiffe_id`.
  Result<Certificate> VerifyIdentity(const std::vector<Certificate>& chain, std::string_view spiffe_id, TimePoint at,
                                     Usage usage) const;

 private:
  std::vector<Certificate> roots_;
};

// ---- SPIFFE ids -------------------------------------------------------------------

// A trust domain: 1-255 chars of [a-z0-9.-_].
Status ValidateTrustDomain(std::string_view td);
// spiffe://<trust domain>/<path>: segments of [A-Za-z0-9.-_], none empty, "." or "..".
Status ValidateSpiffeId(std::string_view id);
// The trust domain of a valid SPIFFE id ("" if invalid).
std::string TrustDomainOf(std::string_view spiffe_id);

// Weft's own identities (not workloads).
enum class Role { kController, kNode, kAdmin };
struct WeftIdentity {
  Role role = Role::kNode;
  std::string name;  // node or admin name; "" for the controller
};
// A node or admin name: 1-253 chars, [a-z0-9] at both ends, [a-z0-9.-] inside (DNS-1123 subdomain).
Status ValidateName(std::string_view what, std::string_view name);
std::string ControllerId(std::string_view trust_domain);
std::string NodeId(std::string_view trust_domain, std::string_view node);
std::string AdminId(std::string_view trust_domain, std::string_view admin);
// Parses a Weft SPIFFE id of `trust_domain`; an error names what is wrong.
Result<WeftIdentity> ParseWeftId(std::string_view spiffe_id, std::string_view trust_domain);

}  // namespace weft::pki
