#include "agent/node_credentials.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "weft/sys.hpp"
#include "weft/transport.hpp"
#include "weft/v1/identity.grpc.pb.h"

namespace weft::agent {

namespace {

using namespace std::chrono_literals;

std::string Trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && ws(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

int64_t Unix(pki::TimePoint t) { return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count(); }

// A refusal that will never succeed (the token or the request is bad), as
// opposed to a controller that is unreachable or refused by us.
bool Definitive(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAUTHENTICATED || c == grpc::StatusCode::PERMISSION_DENIED ||
         c == grpc::StatusCode::INVALID_ARGUMENT;
}

Result<credentials::JoinToken> ReadToken(const std::string& file, std::string* text) {
  auto raw = sys::ReadSmallFile(file, credentials::kMaxTokenBytes + 64);
  if (!raw.ok()) return raw.status().Wrap("--join-token-file");
  *text = Trim(*raw);
  auto t = credentials::ParseJoinToken(*text);
  if (!t.ok()) return t.status().Wrap("--join-token-file " + file);
  return t;
}

}  // namespace

Result<std::unique_ptr<NodeCredentials>> NodeCredentials::Open(NodeCredentialsOptions opts) {
  WEFT_RETURN_IF_ERROR(pki::ValidateTrustDomain(opts.trust_domain).Wrap("--trust-domain"));
  WEFT_RETURN_IF_ERROR(pki::ValidateName("--node", opts.node));
  std::unique_ptr<NodeCredentials> c(new NodeCredentials(std::move(opts)));
  const auto& o = c->opts_;
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(o.dir).Wrap("--credentials-dir"));
  if (credentials::Present(c->paths_)) {
    auto id = c->Check();
    if (id.ok()) {
      c->ready_ = true;
      c->not_after_ = id->leaf().NotAfter();
      c->renew_at_ = id->leaf().NotBefore() + (c->not_after_ - id->leaf().NotBefore()) / 2;
      spdlog::info("node credentials {}: {} until {} (renewal from {}){}", o.dir, pki::NodeId(o.trust_domain, o.node),
                   Unix(c->not_after_), Unix(c->renew_at_),
                   o.join_token_file.empty() ? "" : "; --join-token-file not needed");
      return c;
    }
    if (o.join_token_file.empty())
      return Status::Error("node credentials " + o.dir + " cannot be used: " + id.status().message() +
                               "; join again: weftctl node join-token " + o.node + " > FILE, then --join-token-file FILE",
                           EACCES);
    spdlog::warn("node credentials {} cannot be used ({}): joining again with {}", o.dir, id.status().message(),
                 o.join_token_file);
  } else if (o.join_token_file.empty()) {
    return Status::Error("no node credentials in " + o.dir + " and no --join-token-file: create a token with " +
                             "`weftctl node join-token " + o.node + " > FILE` (as an admin) and start with " +
                             "--join-token-file FILE",
                         EACCES);
  }
  std::string text;
  auto token = ReadToken(o.join_token_file, &text);
  if (!token.ok()) return token.status();
  return c;
}

NodeCredentials::~NodeCredentials() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

bool NodeCredentials::ready() const {
  std::lock_guard lock(mu_);
  return ready_;
}

pki::TimePoint NodeCredentials::renew_at() const {
  std::lock_guard lock(mu_);
  return renew_at_;
}

pki::TimePoint NodeCredentials::not_after() const {
  std::lock_guard lock(mu_);
  return not_after_;
}

Result<credentials::Identity> NodeCredentials::Check() const {
  auto id = credentials::Load(paths_);
  if (!id.ok()) return id.status();
  auto leaf = id->bundle.VerifyIdentity(id->chain, pki::NodeId(opts_.trust_domain, opts_.node), clock().Now(),
                                        pki::Usage::kClient);
  if (!leaf.ok()) return leaf.status();
  return id;
}

void NodeCredentials::OnReject(const std::string& why) const {
  spdlog::warn("controller {}: {}; nothing is taken from it", opts_.controller, why);
}

std::shared_ptr<grpc::ChannelCredentials> NodeCredentials::ChannelCredentials() const {
  transport::ClientTls tls;
  // The node identity through the certificate seam: its credentials dir, watched.
  tls.certs = transport::ProviderFor(*credentials::DirSource(paths_), opts_.refresh).value();
  tls.server_spiffe_id = pki::ControllerId(opts_.trust_domain);
  // The bundle as the dir holds it now (a renewal may have replaced it).
  tls.roots = [ca = paths_.ca()]() -> Result<pki::TrustBundle> {
    auto pem = sys::ReadSmallFile(ca, pki::kMaxPemBytes);
    if (!pem.ok()) return pem.status();
    return pki::TrustBundle::FromPem(*pem);
  };
  tls.on_reject = [this](const std::string& why) { OnReject(why); };
  return transport::TlsChannelCredentials(tls);
}

Status NodeCredentials::Store(const std::string& chain_pem, const std::string& bundle_pem, const pki::PrivateKey& key,
                              const std::string& must_contain_root) {
  auto chain = pki::Certificate::ChainFromPem(chain_pem);
  if (!chain.ok()) return chain.status().Wrap("the controller's answer");
  auto bundle = pki::TrustBundle::FromPem(bundle_pem);
  if (!bundle.ok()) return bundle.status().Wrap("the controller's answer");
  if (!must_contain_root.empty() && !bundle->Contains(must_contain_root))
    return Status::Error("the controller's trust bundle does not hold the CA the token pins (" +
                             must_contain_root.substr(0, 16) + "...)",
                         EACCES);
  if (!chain->front().Matches(key)) return Status::Error("the controller's certificate is not for our key", EACCES);
  auto leaf = bundle->VerifyIdentity(*chain, pki::NodeId(opts_.trust_domain, opts_.node), clock().Now(),
                                     pki::Usage::kClient);
  if (!leaf.ok()) return leaf.status().Wrap("the controller's certificate");
  WEFT_RETURN_IF_ERROR(credentials::WriteCertificates(paths_, *chain, *bundle));
  std::lock_guard lock(mu_);
  ready_ = true;
  not_after_ = leaf->NotAfter();
  // Half the lifetime, and never sooner than a second from now (no busy loop
  // on a certificate that is already half gone).
  renew_at_ = std::max(leaf->NotBefore() + (not_after_ - leaf->NotBefore()) / 2,
                       clock().Now() + std::chrono::seconds(1));
  return Status::Ok();
}

Result<pki::PrivateKey> NodeCredentials::LoadOrMakeKey() const {
  struct stat st {};
  if (::lstat(paths_.key().c_str(), &st) == 0) {
    auto pem = sys::ReadSmallFile(paths_.key(), pki::kMaxPemBytes);
    if (pem.ok() && (st.st_mode & 077) == 0 && S_ISREG(st.st_mode))
      if (auto k = pki::PrivateKey::FromPem(*pem); k.ok()) return k;
    spdlog::warn("{}: not a usable private key (mode 0600, P-256): making a new one", paths_.key());
    ::unlink(paths_.key().c_str());
  }
  auto k = pki::PrivateKey::Generate();
  if (!k.ok()) return k.status();
  WEFT_RETURN_IF_ERROR(credentials::WriteKey(paths_, *k));
  return k;
}

Status NodeCredentials::Join() {
  std::string text;
  auto token = ReadToken(opts_.join_token_file, &text);
  if (!token.ok()) return token.status();
  // The key: made here, kept here (a retry after a failed attempt reuses it).
  auto key = LoadOrMakeKey();
  if (!key.ok()) return key.status();
  auto csr = pki::CertificateRequest::Create(*key, opts_.node);
  if (!csr.ok()) return csr.status();

  transport::ClientTls tls;
  tls.certs = nullptr;
  tls.present_identity = false;
  tls.server_spiffe_id = pki::ControllerId(opts_.trust_domain);
  tls.pinned_ca_sha256 = token->ca_sha256;
  tls.on_reject = [this](const std::string& why) { OnReject(why); };
  auto ch = transport::Dial(opts_.controller, transport::TlsChannelCredentials(tls));
  if (!ch.ok()) return ch.status();
  auto stub = v1::NodeIdentity::NewStub(*ch);
  v1::JoinRequest req;
  req.set_token(text);
  req.set_node(opts_.node);
  req.set_csr_pem(csr->ToPem());
  v1::CertificateResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Status st = stub->Join(&ctx, req, &resp);
  if (!st.ok()) {
    std::string msg = "join controller " + opts_.controller + " as node " + opts_.node + ": " + st.error_message();
    return Status::Error(msg, Definitive(st.error_code()) ? EACCES : EAGAIN);
  }
  WEFT_RETURN_IF_ERROR(Store(resp.certificate_chain_pem(), resp.trust_bundle_pem(), *key, token->ca_sha256)
                           .Wrap("join controller " + opts_.controller));
  spdlog::info("joined controller {} as {} (certificate until {}); credentials in {}", opts_.controller,
               resp.spiffe_id(), resp.not_after_unix(), opts_.dir);
  return Status::Ok();
}

Status NodeCredentials::Renew() {
  auto id = credentials::Load(paths_);
  if (!id.ok()) return id.status();
  auto csr = pki::CertificateRequest::Create(id->key, opts_.node);
  if (!csr.ok()) return csr.status();
  auto ch = transport::Dial(opts_.controller, ChannelCredentials());
  if (!ch.ok()) return ch.status();
  auto stub = v1::NodeIdentity::NewStub(*ch);
  v1::RenewRequest req;
  req.set_csr_pem(csr->ToPem());
  v1::CertificateResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Status st = stub->Renew(&ctx, req, &resp);
  if (!st.ok()) return Status::Error("renew at controller " + opts_.controller + ": " + st.error_message(), EAGAIN);
  WEFT_RETURN_IF_ERROR(Store(resp.certificate_chain_pem(), resp.trust_bundle_pem(), id->key, "").Wrap("renew"));
  spdlog::info("node certificate renewed: {} until {}", resp.spiffe_id(), resp.not_after_unix());
  return Status::Ok();
}

void NodeCredentials::StartRenewal() {
  std::lock_guard lock(mu_);
  if (!renewer_.joinable()) renewer_ = std::thread([this] { RenewLoop(); });
}

void NodeCredentials::RenewLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (clock().WaitUntil(cv_, lock, renew_at_, [&] { return stop_; })) return;
    lock.unlock();
    Status st = Renew();
    lock.lock();
    if (st.ok()) continue;  // renew_at_ moved on
    const auto now = clock().Now();
    if (now >= not_after_) {
      spdlog::error("node certificate expired at {}: {}; the controller will refuse this node until it joins again "
                    "(weftctl node join-token {}, restart with --join-token-file)",
                    Unix(not_after_), st.message(), opts_.node);
    } else {
      spdlog::warn("{}; retrying (the certificate is valid until {})", st.message(), Unix(not_after_));
    }
    // Retry within the remaining lifetime: every tenth of it, between 1 s and 5 min.
    auto left = std::chrono::duration_cast<std::chrono::seconds>(not_after_ - now);
    renew_at_ = now + std::clamp<std::chrono::seconds>(left / 10, 1s, 300s);
  }
}

}  // namespace weft::agent
