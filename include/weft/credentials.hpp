// A credentials directory: one identity's private key, its certificate chain
// and the trust bundle, as PEM files. The agent (node identity, default
// <state-dir>/<node>/credentials), weftctl (admin identity, --credentials)
// and the controller (its serving identity, <data-dir>/tls) all keep theirs
// this way, so gRPC's file-watching certificate provider can re-read them
// after a renewal.
//
//   DIR/          0700, owned by the process's user
//   DIR/key.pem   0600  PKCS#8 ECDSA P-256 (written once; a renewal keeps it)
//   DIR/cert.pem  0600  leaf first, then the issuing CA(s) below the root
//   DIR/ca.pem    0600  the trust bundle (one or more roots)
//
// Every write is atomic (a temp file in DIR, fsync, rename), so a reader sees
// the old file or the new one, never half of one. A key readable by group or
// others is refused on load (as ssh does).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "weft/pki.hpp"
#include "weft/status.hpp"

namespace weft::credentials {

struct Paths {
  std::string dir;
  std::string key() const { return dir + "/key.pem"; }
  std::string cert() const { return dir + "/cert.pem"; }
  std::string ca() const { return dir + "/ca.pem"; }
};

struct Identity {
  pki::PrivateKey key;
  std::vector<pki::Certificate> chain;  // leaf first
  pki::TrustBundle bundle;
  const pki::Certificate& leaf() const { return chain.front(); }
};

// True if DIR holds all three files (whether or not they are valid).
bool Present(const Paths& p);
// Reads and checks the three files: the key matches the leaf. (Validity and
// the chain are the caller's to check, with the time it chooses.)
Result<Identity> Load(const Paths& p);
// Atomic writes (0600). WriteKey refuses to replace an existing key.
Status WriteKey(const Paths& p, const pki::PrivateKey& key);
Status WriteCertificates(const Paths& p, const std::vector<pki::Certificate>& chain, const pki::TrustBundle& bundle);

// Where one identity's credentials come from, for whoever presents them:
// the seam between issuing and rotating certificates and presenting them.
// Today gRPC's TLS presents the control plane's (transport::ProviderFor);
// next, the node proxy presents workloads' (spiffe://<td>/ns/<ns>/sa/<sa>)
// in its own OpenSSL contexts, from a source per workload that the node's
// certificate manager fills. gRPC's own CertificateProviderInterface is not
// that seam: it is opaque (no key or chain can be read back out of it) and
// gRPC 1.51 offers no rotating implementation besides its file watcher.
class CertificateSource {
 public:
  virtual ~CertificateSource() = default;
  // The key, chain and bundle to present now (a renewal replaces them).
  // Thread-safe; called per handshake.
  virtual Result<Identity> Current() const = 0;
  // The credentials dir it reads, if it is one (a presenter may watch it).
  virtual const Paths* dir() const { return nullptr; }
};
// Always `id`.
std::shared_ptr<CertificateSource> FixedSource(Identity id);
// DIR as it is at each call (Load: a renewal written by WriteCertificates is
// seen by the next call).
std::shared_ptr<CertificateSource> DirSource(Paths paths);

// A join token: weft1.<CA sha256 hex>.<id: 16 hex>.<secret: 64 hex>. The
// controller keeps SHA-256(secret); the agent pins the CA before it sends it.
inline constexpr size_t kMaxTokenBytes = 512;
struct JoinToken {
  std::string ca_sha256, id, secret;
};
// An error (EACCES) for anything malformed, never echoing the secret.
Result<JoinToken> ParseJoinToken(std::string_view token);
std::string FormatJoinToken(const std::string& ca_sha256, const std::string& id, const std::string& secret);


}  // namespace weft::credentials
