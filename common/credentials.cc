#include "weft/credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <random>

#include "weft/sys.hpp"
#include "weft/unique_fd.hpp"

namespace weft::credentials {

namespace {
bool IsHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace

namespace {

class Fixed final : public CertificateSource {
 public:
  explicit Fixed(Identity id) : id_(std::move(id)) {}
  Result<Identity> Current() const override { return id_; }

 private:
  const Identity id_;
};

class Dir final : public CertificateSource {
 public:
  explicit Dir(Paths paths) : paths_(std::move(paths)) {}
  Result<Identity> Current() const override { return Load(paths_); }
  const Paths* dir() const override { return &paths_; }

 private:
  const Paths paths_;
};

}  // namespace

std::shared_ptr<CertificateSource> FixedSource(Identity id) { return std::make_shared<Fixed>(std::move(id)); }
std::shared_ptr<CertificateSource> DirSource(Paths paths) { return std::make_shared<Dir>(std::move(paths)); }

Result<JoinToken> ParseJoinToken(std::string_view token) {
  auto malformed = [] {
    return Status::Error("join token: malformed (expected weft1.<CA sha256>.<id>.<secret>, as printed by "
                         "`weftctl node join-token NODE`)",
                         EACCES);
  };
  if (token.size() > kMaxTokenBytes) return malformed();
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos || parts.size() > 4) break;
    start = dot + 1;
  }
  if (parts.size() != 4 || parts[0] != "weft1" || parts[1].size() != 64 || parts[2].size() != 16 ||
      parts[3].size() != 64 || !IsHex(parts[1]) || !IsHex(parts[2]) || !IsHex(parts[3]))
    return malformed();
  return JoinToken{std::string(parts[1]), std::string(parts[2]), std::string(parts[3])};
}

std::string FormatJoinToken(const std::string& ca_sha256, const std::string& id, const std::string& secret) {
  return "weft1." + ca_sha256 + "." + id + "." + secret;
}

bool Present(const Paths& p) {
  struct stat st {};
  return ::stat(p.key().c_str(), &st) == 0 && ::stat(p.cert().c_str(), &st) == 0 && ::stat(p.ca().c_str(), &st) == 0;
}

Status WriteKey(const Paths& p, const pki::PrivateKey& key) {
  struct stat st {};
  if (::lstat(p.key().c_str(), &st) == 0)
    return Status::Error("write " + p.key() + ": a key is already there (remove it to start over)", EEXIST);
  return sys::WriteFileAtomic(p.key(), key.ToPem(), 0600);
}

Status WriteCertificates(const Paths& p, const std::vector<pki::Certificate>& chain, const pki::TrustBundle& bundle) {
  if (chain.empty()) return Status::Error("write " + p.cert() + ": no certificate", EINVAL);
  // The bundle first: a reader that sees the new leaf can verify it.
  WEFT_RETURN_IF_ERROR(sys::WriteFileAtomic(p.ca(), bundle.ToPem(), 0600));
  return sys::WriteFileAtomic(p.cert(), pki::ChainToPem(chain), 0600);
}

Result<Identity> Load(const Paths& p) {
  struct stat st {};
  if (::stat(p.key().c_str(), &st) != 0) return Status::Errno("read " + p.key(), errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return Status::Error(p.key() + ": mode " + mode + " lets others read the private key; chmod 600 it", EPERM);
  }
  auto key_pem = sys::ReadSmallFile(p.key(), pki::kMaxPemBytes);
  if (!key_pem.ok()) return key_pem.status();
  auto key = pki::PrivateKey::FromPem(*key_pem);
  if (!key.ok()) return key.status().Wrap(p.key());
  auto cert_pem = sys::ReadSmallFile(p.cert(), pki::kMaxPemBytes);
  if (!cert_pem.ok()) return cert_pem.status();
  auto chain = pki::Certificate::ChainFromPem(*cert_pem);
  if (!chain.ok()) return chain.status().Wrap(p.cert());
  auto ca_pem = sys::ReadSmallFile(p.ca(), pki::kMaxPemBytes);
  if (!ca_pem.ok()) return ca_pem.status();
  auto bundle = pki::TrustBundle::FromPem(*ca_pem);
  if (!bundle.ok()) return bundle.status().Wrap(p.ca());
  if (!chain->front().Matches(*key))
    return Status::Error(p.cert() + ": the certificate is not for the key in " + p.key(), EINVAL);
  return Identity{std::move(*key), std::move(*chain), std::move(*bundle)};
}

}  // namespace weft::credentials
