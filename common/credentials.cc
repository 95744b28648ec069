#include "weft/credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <random>

#include "weft/unique_fd.hpp"

namespace weft::credentials {

Result<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return Status::Errno("read " + path, errno);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Errno("read " + path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit)
      return Status::Error("read " + path + ": larger than " + std::to_string(limit) + " bytes", EFBIG);
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, const std::string& content, unsigned mode) {
  std::random_device rd;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return Status::Errno("create " + tmp, errno);
  auto fail = [&](const std::string& step) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Status::Errno(step + " " + tmp, e);
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod");  // whatever the umask
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename to " + path + ":");
  return Status::Ok();
}

namespace {
bool IsHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace

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

Status EnsurePrivateDir(const std::string& dir) {
  if (dir.empty()) return Status::Error("private directory: empty path", EINVAL);
  std::error_code ec;
  auto parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Status::Error("create " + parent.string() + ": " + ec.message(), ec.value());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Status::Errno("create " + dir, errno);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return Status::Errno("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Error(dir + ": not a directory", ENOTDIR);
  if (st.st_uid != ::geteuid())
    return Status::Error(dir + ": owned by uid " + std::to_string(st.st_uid) + ", not by us (uid " +
                             std::to_string(::geteuid()) + ")",
                         EPERM);
  if ((st.st_mode & (S_ISVTX | S_IWOTH)) != 0)
    return Status::Error(dir + ": a shared directory (world-writable or sticky); use a directory of its own", EPERM);
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
    return Status::Errno("chmod 0700 " + dir, errno);
  return Status::Ok();
}

Status WriteKey(const Paths& p, const pki::PrivateKey& key) {
  struct stat st {};
  if (::lstat(p.key().c_str(), &st) == 0)
    return Status::Error("write " + p.key() + ": a key is already there (remove it to start over)", EEXIST);
  return WriteFileAtomic(p.key(), key.ToPem(), 0600);
}

Status WriteCertificates(const Paths& p, const std::vector<pki::Certificate>& chain, const pki::TrustBundle& bundle) {
  if (chain.empty()) return Status::Error("write " + p.cert() + ": no certificate", EINVAL);
  // The bundle first: a reader that sees the new leaf can verify it.
  WEFT_RETURN_IF_ERROR(WriteFileAtomic(p.ca(), bundle.ToPem(), 0600));
  return WriteFileAtomic(p.cert(), pki::ChainToPem(chain), 0600);
}

Result<Identity> Load(const Paths& p) {
  struct stat st {};
  if (::stat(p.key().c_str(), &st) != 0) return Status::Errno("read " + p.key(), errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return Status::Error(p.key() + ": mode " + mode + " lets others read the private key; chmod 600 it", EPERM);
  }
  auto key_pem = ReadSmallFile(p.key());
  if (!key_pem.ok()) return key_pem.status();
  auto key = pki::PrivateKey::FromPem(*key_pem);
  if (!key.ok()) return key.status().Wrap(p.key());
  auto cert_pem = ReadSmallFile(p.cert());
  if (!cert_pem.ok()) return cert_pem.status();
  auto chain = pki::Certificate::ChainFromPem(*cert_pem);
  if (!chain.ok()) return chain.status().Wrap(p.cert());
  auto ca_pem = ReadSmallFile(p.ca());
  if (!ca_pem.ok()) return ca_pem.status();
  auto bundle = pki::TrustBundle::FromPem(*ca_pem);
  if (!bundle.ok()) return bundle.status().Wrap(p.ca());
  if (!chain->front().Matches(*key))
    return Status::Error(p.cert() + ": the certificate is not for the key in " + p.key(), EINVAL);
  return Identity{std::move(*key), std::move(*chain), std::move(*bundle)};
}

}  // namespace weft::credentials
