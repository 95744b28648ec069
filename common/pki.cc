#include "weft/pki.hpp"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <ctime>

namespace weft::pki {

namespace {

// ---- owners ---------------------------------------------------------------------

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // the certificates are owned elsewhere
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
struct EkuFree {
  void operator()(EXTENDED_KEY_USAGE* e) const { EXTENDED_KEY_USAGE_free(e); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Names = std::unique_ptr<GENERAL_NAMES, NamesFree>;

std::shared_ptr<EVP_PKEY> OwnKey(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }
std::shared_ptr<X509> OwnCert(X509* c) { return std::shared_ptr<X509>(c, X509_free); }
std::shared_ptr<X509_REQ> OwnReq(X509_REQ* r) { return std::shared_ptr<X509_REQ>(r, X509_REQ_free); }

// "step: reason" with OpenSSL's queued reasons (the queue is emptied).
Status SslError(const std::string& step) {
  std::string reasons;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* r = ERR_reason_error_string(e);
    if (!reasons.empty()) reasons += "; ";
    reasons += r ? r : buf;
  }
  return Status::Error(step + (reasons.empty() ? "" : ": " + reasons), EINVAL);
}

Result<Bio> ReadBio(std::string_view data, const std::string& what) {
  if (data.size() > kMaxPemBytes)
    return Status::Error(what + ": " + std::to_string(data.size()) + " bytes is over the limit of " +
                             std::to_string(kMaxPemBytes),
                         EINVAL);
  Bio b(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!b) return SslError(what);
  return b;
}

std::string BioText(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  return n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string();
}

// Never prompts for a pass phrase: an encrypted key is refused.
int NoPassword(char*, int, int, void*) { return -1; }

Status CheckP256(EVP_PKEY* k, const std::string& what) {
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) return Status::Error(what + ": not an EC key (Weft uses ECDSA P-256)", EINVAL);
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
      std::string_view(group, len) != "prime256v1")
    return Status::Error(what + ": EC key on curve \"" + std::string(group, len) + "\", expected P-256 (prime256v1)",
                         EINVAL);
  return Status::Ok();
}

TimePoint FromAsn1(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return Clock::from_time_t(timegm(&tm));
}

std::vector<std::string> SansOf(X509* c, int type) {
  std::vector<std::string> out;
  Names names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != type) continue;
    if (type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      int fam = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
      if (fam && inet_ntop(fam, ip->data, buf, sizeof buf)) out.emplace_back(buf);
      continue;
    }
    const ASN1_IA5STRING* s = type == GEN_URI ? gn->d.uniformResourceIdentifier : gn->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(s->data), static_cast<size_t>(s->length));
  }
  return out;
}

std::string NameText(const X509_NAME* n) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253) < 0) return "";
  return BioText(b.get());
}

Status AddName(GENERAL_NAMES* names, int type, const std::string& value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (!gn) return SslError("subjectAltName");
  if (type == GEN_IPADD) {
    unsigned char buf[16];
    int len = 0;
    if (inet_pton(AF_INET, value.c_str(), buf) == 1) len = 4;
    else if (inet_pton(AF_INET6, value.c_str(), buf) == 1) len = 16;
    ASN1_OCTET_STRING* ip = len ? ASN1_OCTET_STRING_new() : nullptr;
    if (!ip || ASN1_OCTET_STRING_set(ip, buf, len) != 1) {
      ASN1_OCTET_STRING_free(ip);
      GENERAL_NAME_free(gn);
      return Status::Error("subjectAltName IP \"" + value + "\": not an IPv4 or IPv6 address", EINVAL);
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (!s || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(gn);
      return SslError("subjectAltName \"" + value + "\"");
    }
    GENERAL_NAME_set0_value(gn, type, s);
  }
  if (sk_GENERAL_NAME_push(names, gn) == 0) {
    GENERAL_NAME_free(gn);
    return SslError("subjectAltName");
  }
  return Status::Ok();
}

// An extension from its textual config (only for fixed strings, never input).
Status AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return SslError(std::string("extension ") + OBJ_nid2sn(nid));
  return Status::Ok();
}

// The validity window: [not_before, not_before + lifetime], or by default
// [now - skew, now + lifetime] where skew (a peer whose clock is a little
// behind still accepts a certificate issued just now) is 5 minutes, at most a
// tenth of the lifetime: a short-lived certificate is not born half expired.
struct Window {
  TimePoint not_before, not_after;
};
Result<Window> ValidityWindow(TimePoint not_before, std::chrono::seconds lifetime,
                              const weft::Clock& clock = weft::SystemClock()) {
  if (lifetime.count() <= 0) return Status::Error("certificate lifetime must be positive", EINVAL);
  if (not_before != TimePoint{}) return Window{not_before, not_before + lifetime};
  const auto now = clock.Now();
  auto skew = std::min<Clock::duration>(std::chrono::minutes(5), lifetime / 10);
  return Window{now - skew, now + lifetime};
}

Status SetValidity(X509* cert, const Window& w) {
  if (!ASN1_TIME_set(X509_getm_notBefore(cert), Clock::to_time_t(w.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert), Clock::to_time_t(w.not_after)))
    return SslError("set validity");
  return Status::Ok();
}

Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return SslError("serial number");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x01;  // and 16 bytes long
  std::unique_ptr<BIGNUM, BnFree> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) return SslError("serial number");
  return Status::Ok();
}

Status SetCommonName(X509_NAME* name, std::string_view cn) {
  if (cn.empty()) return Status::Ok();
  if (cn.size() > 64) return Status::Error("common name \"" + std::string(cn) + "\": longer than 64", EINVAL);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1)
    return SslError("common name");
  return Status::Ok();
}

bool ValidSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (bytes == 0 || RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) return "";
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : buf) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- PrivateKey -------------------------------------------------------------------

Result<PrivateKey> PrivateKey::Generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!k) return SslError("generate ECDSA P-256 key");
  return PrivateKey(OwnKey(k));
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  auto bio = ReadBio(pem, "private key PEM");
  if (!bio.ok()) return bio.status();
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassword, nullptr);
  if (!k) return SslError("parse private key PEM");
  auto owned = OwnKey(k);
  WEFT_RETURN_IF_ERROR(CheckP256(k, "private key"));
  return PrivateKey(std::move(owned));
}

std::string PrivateKey::ToPem() const {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) return "";
  return BioText(b.get());
}

// ---- Certificate ------------------------------------------------------------------

Result<std::vector<Certificate>> Certificate::ChainFromPem(std::string_view pem) {
  auto bio = ReadBio(pem, "certificate PEM");
  if (!bio.ok()) return bio.status();
  std::vector<Certificate> out;
  for (;;) {
    X509* c = PEM_read_bio_X509(bio->get(), nullptr, NoPassword, nullptr);
    if (!c) break;
    out.push_back(Certificate(OwnCert(c)));
  }
  unsigned long e = ERR_peek_last_error();
  if (!out.empty() && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ERR_clear_error();  // the normal end
  if (out.empty()) return SslError("parse certificate PEM");
  if (ERR_peek_error() != 0) return SslError("parse certificate PEM (certificate " + std::to_string(out.size() + 1) + ")");
  return out;
}

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  auto chain = ChainFromPem(pem);
  if (!chain.ok()) return chain.status();
  return chain->front();
}

Result<Certificate> Certificate::FromDer(std::string_view der) {
  if (der.size() > kMaxPemBytes) return Status::Error("certificate DER: over the size limit", EINVAL);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* c = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!c) return SslError("parse certificate DER");
  return Certificate(OwnCert(c));
}

std::string Certificate::ToPem() const {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), cert_.get()) != 1) return "";
  return BioText(b.get());
}

std::string Certificate::ToDer() const {
  unsigned char* buf = nullptr;
  int n = i2d_X509(cert_.get(), &buf);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string Certificate::Sha256Fingerprint() const { return Sha256Hex(ToDer()); }
std::string Certificate::Subject() const { return NameText(X509_get_subject_name(cert_.get())); }
std::string Certificate::Issuer() const { return NameText(X509_get_issuer_name(cert_.get())); }
std::vector<std::string> Certificate::UriSans() const { return SansOf(cert_.get(), GEN_URI); }
std::vector<std::string> Certificate::DnsSans() const { return SansOf(cert_.get(), GEN_DNS); }
std::vector<std::string> Certificate::IpSans() const { return SansOf(cert_.get(), GEN_IPADD); }
TimePoint Certificate::NotBefore() const { return FromAsn1(X509_get0_notBefore(cert_.get())); }
TimePoint Certificate::NotAfter() const { return FromAsn1(X509_get0_notAfter(cert_.get())); }
bool Certificate::IsCa() const { return X509_check_ca(cert_.get()) >= 1; }
bool Certificate::SelfSigned() const { return X509_self_signed(cert_.get(), 0) == 1; }
bool Certificate::Matches(const PrivateKey& key) const {
  return EVP_PKEY_eq(X509_get0_pubkey(cert_.get()), key.get()) == 1;
}

Result<std::string> Certificate::SpiffeId() const {
  auto uris = UriSans();
  if (uris.size() != 1)
    return Status::Error("certificate \"" + Subject() + "\": " + std::to_string(uris.size()) +
                             " URI SANs, a SPIFFE certificate has exactly one",
                         EINVAL);
  Status st = ValidateSpiffeId(uris[0]);
  if (!st.ok()) return st.Wrap("certificate \"" + Subject() + "\"");
  return uris[0];
}

std::string ChainToPem(const std::vector<Certificate>& chain) {
  std::string out;
  for (const auto& c : chain) out += c.ToPem();
  return out;
}

// ---- CertificateRequest -------------------------------------------------------------

Result<CertificateRequest> CertificateRequest::Create(const PrivateKey& key, std::string_view common_name) {
  auto req = OwnReq(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return SslError("create CSR");
  WEFT_RETURN_IF_ERROR(SetCommonName(X509_REQ_get_subject_name(req.get()), common_name));
  if (X509_REQ_set_pubkey(req.get(), key.get()) != 1) return SslError("CSR public key");
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return SslError("sign CSR");
  return CertificateRequest(std::move(req));
}

Result<CertificateRequest> CertificateRequest::FromPem(std::string_view pem) {
  auto bio = ReadBio(pem, "CSR PEM");
  if (!bio.ok()) return bio.status();
  X509_REQ* r = PEM_read_bio_X509_REQ(bio->get(), nullptr, NoPassword, nullptr);
  if (!r) return SslError("parse CSR PEM");
  auto req = OwnReq(r);
  EVP_PKEY* pub = X509_REQ_get0_pubkey(r);
  if (!pub) return SslError("CSR public key");
  WEFT_RETURN_IF_ERROR(CheckP256(pub, "CSR public key"));
  if (X509_REQ_verify(r, pub) != 1) return SslError("CSR signature does not verify with its own key");
  return CertificateRequest(std::move(req));
}

std::string CertificateRequest::ToPem() const {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509_REQ(b.get(), req_.get()) != 1) return "";
  return BioText(b.get());
}

// ---- CertificateAuthority -------------------------------------------------------------

Result<CertificateAuthority> CertificateAuthority::CreateRoot(const PrivateKey& key, std::string_view trust_domain,
                                                              std::chrono::seconds lifetime, TimePoint not_before) {
  WEFT_RETURN_IF_ERROR(ValidateTrustDomain(trust_domain));
  auto cert = OwnCert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return SslError("create CA certificate");
  WEFT_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  auto window = ValidityWindow(not_before, lifetime);
  if (!window.ok()) return window.status();
  WEFT_RETURN_IF_ERROR(SetValidity(cert.get(), *window));
  X509_NAME* name = X509_get_subject_name(cert.get());
  WEFT_RETURN_IF_ERROR(SetCommonName(name, "weft CA " + std::string(trust_domain).substr(0, 40)));
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("weft"), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key.get()) != 1)
    return SslError("CA certificate names");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  Names names(GENERAL_NAMES_new());
  if (!names) return SslError("subjectAltName");
  WEFT_RETURN_IF_ERROR(AddName(names.get(), GEN_URI, "spiffe://" + std::string(trust_domain)));
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return SslError("subjectAltName");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return SslError("self-sign CA certificate");
  return CertificateAuthority({Certificate(std::move(cert))}, key);
}

Result<CertificateAuthority> CertificateAuthority::Load(std::string_view cert_pem, std::string_view key_pem) {
  auto chain = Certificate::ChainFromPem(cert_pem);
  if (!chain.ok()) return chain.status().Wrap("CA certificate");
  auto key = PrivateKey::FromPem(key_pem);
  if (!key.ok()) return key.status().Wrap("CA key");
  const Certificate& ca = chain->front();
  if (!ca.IsCa()) return Status::Error("CA certificate \"" + ca.Subject() + "\": not a CA (basicConstraints CA:FALSE)", EINVAL);
  if (!ca.Matches(*key)) return Status::Error("CA key does not match the CA certificate \"" + ca.Subject() + "\"", EINVAL);
  return CertificateAuthority(std::move(*chain), std::move(*key));
}

std::vector<Certificate> CertificateAuthority::Roots() const {
  std::vector<Certificate> out;
  for (const auto& c : chain_)
    if (c.SelfSigned()) out.push_back(c);
  if (out.empty()) out.push_back(chain_.back());  // an intermediate whose root is not given: trust it directly
  return out;
}

std::vector<Certificate> CertificateAuthority::IssuerChain() const {
  std::vector<Certificate> out;
  for (const auto& c : chain_)
    if (!c.SelfSigned()) out.push_back(c);
  return out;
}

Result<Certificate> CertificateAuthority::Sign(const CertificateRequest& csr, const IssueOptions& opts) const {
  EVP_PKEY* pub = X509_REQ_get0_pubkey(csr.get());
  if (!pub) return SslError("CSR public key");
  WEFT_RETURN_IF_ERROR(CheckP256(pub, "CSR public key"));
  if (X509_REQ_verify(csr.get(), pub) != 1) return SslError("CSR signature does not verify with its own key");
  return IssueFor(pub, opts);
}

Result<Certificate> CertificateAuthority::Issue(const PrivateKey& subject, const IssueOptions& opts) const {
  return IssueFor(subject.get(), opts);
}

Result<Certificate> CertificateAuthority::IssueFor(EVP_PKEY* pub, const IssueOptions& opts) const {
  if (opts.uri_sans.empty() && opts.dns_sans.empty() && opts.ip_sans.empty())
    return Status::Error("issue certificate: no subjectAltName", EINVAL);
  for (const auto& u : opts.uri_sans)
    if (u.rfind("spiffe://", 0) == 0) WEFT_RETURN_IF_ERROR(ValidateSpiffeId(u));
  const X509* issuer = certificate().get();
  // A leaf does not outlive its CA.
  auto window = ValidityWindow(opts.not_before, opts.lifetime, opts.clock ? *opts.clock : weft::SystemClock());
  if (!window.ok()) return window.status();
  window->not_after = std::min(window->not_after, certificate().NotAfter());
  if (window->not_after <= window->not_before)
    return Status::Error("issue certificate: the CA \"" + certificate().Subject() + "\" has expired", EINVAL);

  auto cert = OwnCert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return SslError("create certificate");
  WEFT_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  WEFT_RETURN_IF_ERROR(SetValidity(cert.get(), *window));
  WEFT_RETURN_IF_ERROR(SetCommonName(X509_get_subject_name(cert.get()), opts.common_name));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1 || X509_set_pubkey(cert.get(), pub) != 1)
    return SslError("certificate names");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, const_cast<X509*>(issuer), cert.get(), nullptr, nullptr, 0);
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  const char* eku = opts.usage == Usage::kClient   ? "clientAuth"
                    : opts.usage == Usage::kServer ? "serverAuth"
                                                   : "serverAuth,clientAuth";
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_ext_key_usage, eku));
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  WEFT_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  Names names(GENERAL_NAMES_new());
  if (!names) return SslError("subjectAltName");
  for (const auto& u : opts.uri_sans) WEFT_RETURN_IF_ERROR(AddName(names.get(), GEN_URI, u));
  for (const auto& d : opts.dns_sans) WEFT_RETURN_IF_ERROR(AddName(names.get(), GEN_DNS, d));
  for (const auto& i : opts.ip_sans) WEFT_RETURN_IF_ERROR(AddName(names.get(), GEN_IPADD, i));
  // Critical when the subject is empty (RFC 5280 4.2.1.6).
  const int critical = opts.common_name.empty() ? 1 : 0;
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), critical, X509V3_ADD_DEFAULT) != 1)
    return SslError("subjectAltName");
  if (X509_sign(cert.get(), key_.get(), EVP_sha256()) <= 0) return SslError("sign certificate");
  return Certificate(std::move(cert));
}

// ---- TrustBundle --------------------------------------------------------------------

Result<TrustBundle> TrustBundle::FromPem(std::string_view pem) {
  auto certs = Certificate::ChainFromPem(pem);
  if (!certs.ok()) return certs.status().Wrap("trust bundle");
  for (const auto& c : *certs)
    if (!c.IsCa()) return Status::Error("trust bundle: \"" + c.Subject() + "\" is not a CA certificate", EINVAL);
  return TrustBundle(std::move(*certs));
}

std::string TrustBundle::ToPem() const { return ChainToPem(roots_); }

bool TrustBundle::Contains(std::string_view fp) const {
  for (const auto& r : roots_)
    if (r.Sha256Fingerprint() == fp) return true;
  return false;
}

Result<Certificate> TrustBundle::Verify(const std::vector<Certificate>& chain, TimePoint at, Usage usage) const {
  if (chain.empty()) return Status::Error("verify: no certificate", EINVAL);
  if (roots_.empty()) return Status::Error("verify: empty trust bundle", EINVAL);
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  if (!store) return SslError("verify: trust store");
  for (const auto& r : roots_)
    if (X509_STORE_add_cert(store.get(), r.get()) != 1) return SslError("verify: add root \"" + r.Subject() + "\"");
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (!untrusted) return SslError("verify: chain");
  for (size_t i = 1; i < chain.size(); ++i)
    if (sk_X509_push(untrusted.get(), chain[i].get()) == 0) return SslError("verify: chain");
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1)
    return SslError("verify: context");
  X509_STORE_CTX_set_time(ctx.get(), 0, Clock::to_time_t(at));
  X509_STORE_CTX_set_purpose(ctx.get(), usage == Usage::kServer ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    auto uris = chain[0].UriSans();
    std::string who = !uris.empty() ? uris[0] : chain[0].Subject().empty() ? "without a name" : chain[0].Subject();
    return Status::Error("certificate " + who + ": " + X509_verify_cert_error_string(err),
                         EACCES);
  }
  return chain[0];
}

Result<Certificate> TrustBundle::VerifyIdentity(const std::vector<Certificate>& chain, std::string_view spiffe_id,
                                                TimePoint at, Usage usage) const {
  auto leaf = Verify(chain, at, usage);
  if (!leaf.ok()) return leaf;
  auto id = leaf->SpiffeId();
  if (!id.ok()) return Status::Error(id.status().message(), EACCES);
  if (*id != spiffe_id)
    return Status::Error("certificate is " + *id + ", expected " + std::string(spiffe_id), EACCES);
  return leaf;
}

// ---- SPIFFE ids ----------------------------------------------------------------------

Status ValidateTrustDomain(std::string_view td) {
  if (td.empty() || td.size() > 255)
    return Status::Error("trust domain \"" + std::string(td) + "\": must be 1-255 characters", EINVAL);
  for (char c : td)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
      return Status::Error("trust domain \"" + std::string(td) + "\": only a-z, 0-9, '.', '-' and '_' are allowed",
                           EINVAL);
  return Status::Ok();
}

Status ValidateSpiffeId(std::string_view id) {
  constexpr std::string_view kScheme = "spiffe://";
  auto bad = [&](const std::string& why) {
    std::string shown(id.substr(0, 128));
    return Status::Error("SPIFFE id \"" + shown + (id.size() > 128 ? "..." : "") + "\": " + why, EINVAL);
  };
  if (id.size() > 2048) return bad("longer than 2048 bytes");
  if (id.substr(0, kScheme.size()) != kScheme) return bad("does not start with spiffe://");
  std::string_view rest = id.substr(kScheme.size());
  auto slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  if (Status st = ValidateTrustDomain(td); !st.ok()) return bad(st.message());
  if (slash == std::string_view::npos) return Status::Ok();  // the trust domain itself
  std::string_view path = rest.substr(slash);
  size_t i = 0;
  while (i < path.size()) {
    size_t next = path.find('/', i + 1);
    std::string_view seg = path.substr(i + 1, next == std::string_view::npos ? std::string_view::npos : next - i - 1);
    if (seg.empty()) return bad("empty path segment");
    if (seg == "." || seg == "..") return bad("path segment \"" + std::string(seg) + "\"");
    for (char c : seg)
      if (!ValidSegmentChar(c)) return bad("character '" + std::string(1, c) + "' is not allowed in a path");
    if (next == std::string_view::npos) break;
    i = next;
  }
  return Status::Ok();
}

std::string TrustDomainOf(std::string_view spiffe_id) {
  if (!ValidateSpiffeId(spiffe_id).ok()) return "";
  std::string_view rest = spiffe_id.substr(9);
  return std::string(rest.substr(0, rest.find('/')));
}

Status ValidateName(std::string_view what, std::string_view name) {
  auto bad = [&](const std::string& why) {
    return Status::Error(std::string(what) + " \"" + std::string(name.substr(0, 64)) + (name.size() > 64 ? "..." : "") +
                             "\": " + why,
                         EINVAL);
  };
  if (name.empty() || name.size() > 253) return bad("must be 1-253 characters");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return bad("must start and end with a-z or 0-9");
  for (char c : name)
    if (!alnum(c) && c != '-' && c != '.') return bad("only a-z, 0-9, '-' and '.' are allowed");
  return Status::Ok();
}

std::string ControllerId(std::string_view td) { return "spiffe://" + std::string(td) + "/weft/controller"; }
std::string NodeId(std::string_view td, std::string_view node) {
  return "spiffe://" + std::string(td) + "/weft/node/" + std::string(node);
}
std::string AdminId(std::string_view td, std::string_view admin) {
  return "spiffe://" + std::string(td) + "/weft/admin/" + std::string(admin);
}

Result<WeftIdentity> ParseWeftId(std::string_view id, std::string_view trust_domain) {
  WEFT_RETURN_IF_ERROR(ValidateSpiffeId(id));
  std::string prefix = "spiffe://" + std::string(trust_domain) + "/weft/";
  if (id.substr(0, prefix.size()) != prefix)
    return Status::Error("SPIFFE id " + std::string(id) + " is not a Weft identity of trust domain " +
                             std::string(trust_domain),
                         EACCES);
  std::string_view rest = id.substr(prefix.size());
  if (rest == "controller") return WeftIdentity{Role::kController, ""};
  for (auto [role, head] : {std::pair{Role::kNode, std::string_view("node/")}, {Role::kAdmin, "admin/"}}) {
    if (rest.substr(0, head.size()) != head) continue;
    std::string_view name = rest.substr(head.size());
    WEFT_RETURN_IF_ERROR(ValidateName(role == Role::kNode ? "node name" : "admin name", name));
    return WeftIdentity{role, std::string(name)};
  }
  return Status::Error("SPIFFE id " + std::string(id) + ": not a Weft controller, node or admin identity", EACCES);
}

}  // namespace weft::pki
