#include "controller/ca.hpp"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>

#include "weft/sys.hpp"

namespace weft::controller {
namespace {

constexpr const char* kCaCertKey = "pki/ca.crt";
constexpr const char* kCaKeyKey = "pki/ca.key";
constexpr const char* kTokenPrefix = "join/";
constexpr size_t kMaxLiveTokens = 10000;

int64_t Unix(pki::TimePoint t) { return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count(); }

std::string Iso(int64_t unix_s) {
  time_t t = static_cast<time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::string> ReadKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Errno("--ca-key " + path, errno);
  if ((st.st_mode & 077) != 0)
    return Status::Error("--ca-key " + path + ": readable by group or others; chmod 600 it", EPERM);
  return sys::ReadSmallFile(path, pki::kMaxPemBytes);
}

Status Denied(const std::string& msg) { return Status::Error(msg, EACCES); }

}  // namespace

Result<std::unique_ptr<ClusterCa>> ClusterCa::Open(StateStore& state, const CaOptions& opts) {
  WEFT_RETURN_IF_ERROR(pki::ValidateTrustDomain(opts.trust_domain).Wrap("--trust-domain"));
  if (opts.ca_cert_file.empty() != opts.ca_key_file.empty())
    return Status::Error("--ca-cert and --ca-key go together", EINVAL);
  if (!opts.ca_cert_file.empty()) {
    auto cert = sys::ReadSmallFile(opts.ca_cert_file, pki::kMaxPemBytes);
    if (!cert.ok()) return cert.status().Wrap("--ca-cert");
    auto key = ReadKeyFile(opts.ca_key_file);
    if (!key.ok()) return key.status();
    auto ca = pki::CertificateAuthority::Load(*cert, *key);
    if (!ca.ok()) return ca.status().Wrap("--ca-cert " + opts.ca_cert_file + " / --ca-key " + opts.ca_key_file);
    spdlog::info("CA: {} from {} (SHA-256 {})", ca->certificate().Subject(), opts.ca_cert_file,
                 ca->certificate().Sha256Fingerprint());
    return std::unique_ptr<ClusterCa>(new ClusterCa(state, opts, std::move(*ca)));
  }
  auto stored = state.LoadState("pki/");
  if (!stored.ok()) return stored.status().Wrap("load the CA");
  auto c = stored->find(kCaCertKey), k = stored->find(kCaKeyKey);
  if (c != stored->end() && k != stored->end()) {
    auto ca = pki::CertificateAuthority::Load(c->second, k->second);
    if (!ca.ok()) return ca.status().Wrap("the CA stored in weft.db (state " + std::string(kCaCertKey) + ")");
    if (pki::TrustDomainOf(ca->certificate().UriSans().empty() ? "" : ca->certificate().UriSans()[0]) !=
        opts.trust_domain)
      return Status::Error("the CA stored in weft.db is for trust domain \"" +
                               pki::TrustDomainOf(ca->certificate().UriSans().empty() ? ""
                                                                                      : ca->certificate().UriSans()[0]) +
                               "\", not --trust-domain \"" + opts.trust_domain + "\"",
                           EINVAL);
    spdlog::info("CA: {} from the store (SHA-256 {}, valid until {})", ca->certificate().Subject(),
                 ca->certificate().Sha256Fingerprint(), Iso(Unix(ca->certificate().NotAfter())));
    return std::unique_ptr<ClusterCa>(new ClusterCa(state, opts, std::move(*ca)));
  }
  if (c != stored->end() || k != stored->end())
    return Status::Error("weft.db holds half of a CA (one of " + std::string(kCaCertKey) + ", " + kCaKeyKey +
                             "): refusing to replace it",
                         EINVAL);
  auto key = pki::PrivateKey::Generate();
  if (!key.ok()) return key.status();
  auto ca = pki::CertificateAuthority::CreateRoot(*key, opts.trust_domain, opts.ca_lifetime);
  if (!ca.ok()) return ca.status();
  WEFT_RETURN_IF_ERROR(state.WriteState({{kCaCertKey, ca->certificate().ToPem()}, {kCaKeyKey, key->ToPem()}})
                           .Wrap("store the new CA"));
  spdlog::info("CA: generated {} (ECDSA P-256, SHA-256 {}), stored in weft.db", ca->certificate().Subject(),
               ca->certificate().Sha256Fingerprint());
  return std::unique_ptr<ClusterCa>(new ClusterCa(state, opts, std::move(*ca)));
}

pki::TrustBundle ClusterCa::Bundle() const { return pki::TrustBundle(ca_.Roots()); }
std::string ClusterCa::PinnedFingerprint() const { return ca_.Roots().front().Sha256Fingerprint(); }

Result<std::vector<pki::Certificate>> ClusterCa::IssueServer(const pki::PrivateKey& key,
                                                             const std::vector<std::string>& sans) const {
  pki::IssueOptions o;
  o.uri_sans = {pki::ControllerId(opts_.trust_domain)};
  for (const auto& s : sans) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1) {
      o.ip_sans.push_back(s);
      continue;
    }
    WEFT_RETURN_IF_ERROR(pki::ValidateName("--server-san", s));
    o.dns_sans.push_back(s);
  }
  o.lifetime = opts_.server_cert_ttl;
  o.usage = pki::Usage::kServer;
  o.clock = &clock();
  auto leaf = ca_.Issue(key, o);
  if (!leaf.ok()) return leaf.status();
  std::vector<pki::Certificate> chain{*leaf};
  for (auto& c : ca_.IssuerChain()) chain.push_back(c);
  return chain;
}

Result<std::vector<pki::Certificate>> ClusterCa::IssueClient(const std::string& spiffe_id, std::string_view csr_pem,
                                                             std::chrono::seconds ttl) const {
  if (csr_pem.size() > kMaxCsrBytes)
    return Status::Error("CSR: " + std::to_string(csr_pem.size()) + " bytes, more than " + std::to_string(kMaxCsrBytes),
                         EINVAL);
  auto csr = pki::CertificateRequest::FromPem(csr_pem);
  if (!csr.ok()) return csr.status();
  pki::IssueOptions o;
  o.uri_sans = {spiffe_id};
  o.lifetime = ttl;
  o.usage = pki::Usage::kClient;
  o.clock = &clock();
  auto leaf = ca_.Sign(*csr, o);
  if (!leaf.ok()) return leaf.status();
  std::vector<pki::Certificate> chain{*leaf};
  for (auto& c : ca_.IssuerChain()) chain.push_back(c);
  return chain;
}

Result<std::vector<pki::Certificate>> ClusterCa::IssueNode(const std::string& node, std::string_view csr_pem) const {
  WEFT_RETURN_IF_ERROR(pki::ValidateName("node name", node));
  return IssueClient(pki::NodeId(opts_.trust_domain, node), csr_pem, opts_.node_cert_ttl);
}

Result<std::vector<pki::Certificate>> ClusterCa::IssueAdmin(const std::string& name, std::string_view csr_pem,
                                                            std::chrono::seconds ttl) const {
  WEFT_RETURN_IF_ERROR(pki::ValidateName("admin name", name));
  if (ttl.count() <= 0) ttl = kDefaultAdminCertTtl;
  if (ttl > kMaxAdminCertTtl)
    return Status::Error("admin certificate TTL " + std::to_string(ttl.count()) + " s: at most " +
                             std::to_string(kMaxAdminCertTtl.count()) + " s",
                         EINVAL);
  return IssueClient(pki::AdminId(opts_.trust_domain, name), csr_pem, ttl);
}

Result<JoinToken> ClusterCa::CreateJoinToken(const std::string& node, std::chrono::seconds ttl, pki::TimePoint now) {
  WEFT_RETURN_IF_ERROR(pki::ValidateName("node name", node));
  if (ttl.count() <= 0) ttl = kDefaultJoinTokenTtl;
  if (ttl > kMaxJoinTokenTtl)
    return Status::Error("join token TTL " + std::to_string(ttl.count()) + " s: at most " +
                             std::to_string(kMaxJoinTokenTtl.count()) + " s (7 days)",
                         EINVAL);
  std::lock_guard lock(tokens_mu_);
  auto all = state_.LoadState(kTokenPrefix);
  if (!all.ok()) return all.status().Wrap("join tokens");
  // Forget tokens that expired more than a day ago (used or not).
  std::map<std::string, std::optional<std::string>> writes;
  size_t live = 0;
  for (const auto& [key, value] : *all) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    int64_t expires = j.is_object() ? j.value("expires", int64_t{0}) : 0;
    if (expires + 24 * 3600 < Unix(now)) writes[key] = std::nullopt;
    else ++live;
  }
  if (live >= kMaxLiveTokens)
    return Status::Error("join tokens: " + std::to_string(live) + " are live or recent, the limit is " +
                             std::to_string(kMaxLiveTokens),
                         ENOSPC);
  JoinToken t;
  t.id = pki::RandomHex(8);
  std::string secret = pki::RandomHex(32);
  if (t.id.empty() || secret.empty()) return Status::Error("join token: random bytes unavailable", EIO);
  t.node = node;
  t.expires = now + ttl;
  t.token = credentials::FormatJoinToken(PinnedFingerprint(), t.id, secret);
  nlohmann::json rec = {{"node", node},
                        {"sha256", pki::Sha256Hex(secret)},
                        {"created", Unix(now)},
                        {"expires", Unix(t.expires)},
                        {"used", 0}};
  writes[kTokenPrefix + t.id] = rec.dump();
  WEFT_RETURN_IF_ERROR(state_.WriteState(writes).Wrap("store join token"));
  spdlog::info("join token {} created for node {}, expires {}", t.id, node, Iso(Unix(t.expires)));
  return t;
}

Status ClusterCa::ConsumeJoinToken(std::string_view token, const std::string& node, pki::TimePoint now) {
  auto parsed = credentials::ParseJoinToken(token);
  if (!parsed.ok()) return parsed.status();
  if (parsed->ca_sha256 != PinnedFingerprint())
    return Denied("join token " + parsed->id + ": made for another CA (SHA-256 " + parsed->ca_sha256.substr(0, 16) +
                  "..., this controller's is " + PinnedFingerprint().substr(0, 16) + "...)");
  std::lock_guard lock(tokens_mu_);
  const std::string key = kTokenPrefix + parsed->id;
  auto rec = state_.LoadState(key);
  if (!rec.ok()) return rec.status().Wrap("join token");
  auto it = rec->find(key);
  nlohmann::json j = it == rec->end() ? nlohmann::json() : nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_object() || !pki::ConstantTimeEquals(j.value("sha256", ""), pki::Sha256Hex(parsed->secret)))
    return Denied("join token " + parsed->id + ": unknown (never issued by this controller, or forgotten a day after "
                  "it expired)");
  const std::string bound = j.value("node", "");
  const int64_t used = j.value("used", int64_t{0}), expires = j.value("expires", int64_t{0});
  if (used != 0)
    return Denied("join token " + parsed->id + " for node \"" + bound + "\" was already used at " + Iso(used) +
                  ": a token is single-use; create another with `weftctl node join-token " + bound + "`");
  if (Unix(now) >= expires)
    return Denied("join token " + parsed->id + " for node \"" + bound + "\" expired at " + Iso(expires) +
                  "; create another with `weftctl node join-token " + bound + "`");
  if (bound != node)
    return Denied("join token " + parsed->id + " is for node \"" + bound + "\", not \"" + node + "\"");
  j["used"] = Unix(now);
  WEFT_RETURN_IF_ERROR(state_.WriteState({{key, j.dump()}}).Wrap("mark join token used"));
  return Status::Ok();
}

}  // namespace weft::controller
