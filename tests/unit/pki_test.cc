// weft_pki (include/weft/pki.hpp): keys, a CA, CSRs, chain verification
// against bundles of one or two roots, SPIFFE ids. Time is injected (the
// `at` of Verify and IssueOptions::not_before): nothing waits.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "weft/credentials.hpp"
#include "weft/pki.hpp"

namespace weft::pki {
namespace {

using namespace std::chrono_literals;

PrivateKey Key() {
  auto k = PrivateKey::Generate();
  EXPECT_TRUE(k.ok()) << k.status().message();
  return *k;
}

CertificateAuthority Root(const std::string& td, std::chrono::seconds life = 24h * 365, TimePoint nb = {}) {
  auto ca = CertificateAuthority::CreateRoot(Key(), td, life, nb);
  EXPECT_TRUE(ca.ok()) << ca.status().message();
  return *ca;
}

Certificate Leaf(const CertificateAuthority& ca, const std::string& id, std::chrono::seconds life = 1h,
                 TimePoint nb = {}, Usage usage = Usage::kClient) {
  auto key = Key();
  auto csr = CertificateRequest::Create(key, "ignored");
  EXPECT_TRUE(csr.ok()) << csr.status().message();
  IssueOptions o;
  o.uri_sans = {id};
  o.lifetime = life;
  o.not_before = nb;
  o.usage = usage;
  auto c = ca.Sign(*csr, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

TEST(Pki, KeyPemRoundTripAndP256Only) {
  auto k = Key();
  std::string pem = k.ToPem();
  EXPECT_NE(pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  auto back = PrivateKey::FromPem(pem);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(EVP_PKEY_eq(k.get(), back->get()), 1);

  // An RSA key is refused, naming why.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}),
                                                         EVP_PKEY_free);
  ASSERT_TRUE(rsa);
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(b.get(), rsa.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  auto refused = PrivateKey::FromPem(std::string(p, n));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not an EC key"), std::string::npos) << refused.status().message();

  auto garbage = PrivateKey::FromPem("not a key");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("parse private key PEM"), std::string::npos);
  auto huge = PrivateKey::FromPem(std::string(kMaxPemBytes + 1, 'a'));
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("over the limit"), std::string::npos) << huge.status().message();
}

TEST(Pki, RootCaShape) {
  auto ca = Root("cluster.local");
  const Certificate& c = ca.certificate();
  EXPECT_TRUE(c.IsCa());
  EXPECT_TRUE(c.SelfSigned());
  EXPECT_TRUE(c.Matches(ca.key()));
  EXPECT_EQ(c.UriSans(), std::vector<std::string>{"spiffe://cluster.local"});
  EXPECT_EQ(c.Sha256Fingerprint().size(), 64u);
  EXPECT_EQ(c.Sha256Fingerprint(), Sha256Hex(c.ToDer()));
  auto again = Certificate::FromPem(c.ToPem());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Sha256Fingerprint(), c.Sha256Fingerprint());
  EXPECT_EQ(ca.Roots().size(), 1u);
  EXPECT_TRUE(ca.IssuerChain().empty());

  auto loaded = CertificateAuthority::Load(c.ToPem(), ca.key().ToPem());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto wrong_key = CertificateAuthority::Load(c.ToPem(), Key().ToPem());
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_NE(wrong_key.status().message().find("does not match"), std::string::npos);
  auto leaf = Leaf(ca, NodeId("cluster.local", "n1"));
  auto not_ca = CertificateAuthority::Load(leaf.ToPem(), ca.key().ToPem());
  ASSERT_FALSE(not_ca.ok());
  EXPECT_NE(not_ca.status().message().find("not a CA"), std::string::npos);
}

// The CA signs the CSR's key with the SANs it chooses; the CSR's own subject
// and extensions are never copied.
TEST(Pki, SignTakesOnlyTheCsrKey) {
  auto ca = Root("cluster.local");
  auto key = Key();
  auto csr = CertificateRequest::Create(key, "spiffe-admin-please");
  ASSERT_TRUE(csr.ok());
  auto parsed = CertificateRequest::FromPem(csr->ToPem());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  IssueOptions o;
  o.uri_sans = {NodeId("cluster.local", "node1")};
  o.dns_sans = {"node1.example"};
  o.ip_sans = {"127.0.0.1", "::1"};
  o.usage = Usage::kServerAndClient;
  auto cert = ca.Sign(*parsed, o);
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_TRUE(cert->Matches(key));
  EXPECT_FALSE(cert->IsCa());
  EXPECT_EQ(cert->Subject(), "");
  EXPECT_EQ(cert->UriSans(), o.uri_sans);
  EXPECT_EQ(cert->DnsSans(), o.dns_sans);
  EXPECT_EQ(cert->IpSans(), o.ip_sans);
  EXPECT_EQ(*cert->SpiffeId(), "spiffe://cluster.local/weft/node/node1");
  // Lifetime: clipped to the CA's.
  auto short_ca = Root("cluster.local", 2h);
  IssueOptions longer = o;
  longer.lifetime = 24h * 30;
  auto clipped = short_ca.Sign(*parsed, longer);
  ASSERT_TRUE(clipped.ok());
  EXPECT_LE(clipped->NotAfter(), short_ca.certificate().NotAfter());
}

TEST(Pki, CsrWithABadSignatureIsRefused) {
  auto key = Key();
  auto csr = CertificateRequest::Create(key, "x");
  ASSERT_TRUE(csr.ok());
  // Swap the public key for another one: the signature no longer verifies.
  auto other = Key();
  ASSERT_EQ(X509_REQ_set_pubkey(csr->get(), other.get()), 1);
  auto r = CertificateRequest::FromPem(csr->ToPem());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CSR signature does not verify"), std::string::npos) << r.status().message();
  auto ca = Root("cluster.local");
  IssueOptions o;
  o.uri_sans = {NodeId("cluster.local", "n")};
  auto signed_anyway = ca.Sign(*csr, o);
  EXPECT_FALSE(signed_anyway.ok());
}

// Chain verification, one row per way a peer can fail (or pass).
TEST(Pki, VerifyTable) {
  const std::string td = "cluster.local";
  const auto now = Clock::now();
  auto a = Root(td);
  auto b = Root(td);  // another root of the same trust domain (e.g. after rotation, or an impostor's)
  auto old_root = Root(td, 2h, now - 3h);  // expired an hour ago
  const std::string node1 = NodeId(td, "node1");
  struct Row {
    const char* name;
    std::function<Certificate()> leaf;
    std::vector<Certificate> bundle;
    std::string expect_id;
    TimePoint at;
    Usage usage;
    const char* error;  // nullptr: verifies
  };
  std::vector<Row> rows = {
      {"valid", [&] { return Leaf(a, node1); }, {a.certificate()}, node1, now, Usage::kClient, nullptr},
      {"wrong CA", [&] { return Leaf(b, node1); }, {a.certificate()}, node1, now, Usage::kClient,
       "unable to get local issuer certificate"},
      {"expired", [&] { return Leaf(a, node1, 1h, now - 2h); }, {a.certificate()}, node1, now, Usage::kClient,
       "certificate has expired"},
      {"not yet valid", [&] { return Leaf(a, node1, 1h, now + 1h); }, {a.certificate()}, node1, now, Usage::kClient,
       "certificate is not yet valid"},
      {"valid later in its life", [&] { return Leaf(a, node1, 2h); }, {a.certificate()}, node1, now + 90min,
       Usage::kClient, nullptr},
      {"wrong SAN", [&] { return Leaf(a, NodeId(td, "node2")); }, {a.certificate()}, node1, now, Usage::kClient,
       "expected spiffe://cluster.local/weft/node/node1"},
      {"other trust domain", [&] { return Leaf(a, NodeId("evil.local", "node1")); }, {a.certificate()}, node1, now,
       Usage::kClient, "expected"},
      {"two roots: first", [&] { return Leaf(a, node1); }, {a.certificate(), b.certificate()}, node1, now,
       Usage::kClient, nullptr},
      {"two roots: second", [&] { return Leaf(b, node1); }, {a.certificate(), b.certificate()}, node1, now,
       Usage::kClient, nullptr},
      {"two roots: neither", [&] { return Leaf(Root(td), node1); }, {a.certificate(), b.certificate()}, node1, now,
       Usage::kClient, "unable to get local issuer certificate"},
      {"expired root", [&] { return Leaf(old_root, node1, 1h, now - 150min); }, {old_root.certificate()}, node1, now,
       Usage::kClient, "certificate has expired"},
      {"client cert used as a server", [&] { return Leaf(a, ControllerId(td)); }, {a.certificate()}, ControllerId(td),
       now, Usage::kServer, "unsuitable certificate purpose"},
      {"server cert", [&] { return Leaf(a, ControllerId(td), 1h, {}, Usage::kServer); }, {a.certificate()},
       ControllerId(td), now, Usage::kServer, nullptr},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    TrustBundle bundle(row.bundle);
    auto r = bundle.VerifyIdentity({row.leaf()}, row.expect_id, row.at, row.usage);
    if (!row.error) {
      EXPECT_TRUE(r.ok()) << r.status().message();
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.status().message().find(row.error), std::string::npos) << r.status().message();
    }
  }
}

// An impostor's self-signed certificate with the controller's SPIFFE id
// verifies against nothing but itself.
TEST(Pki, SelfSignedImpostorDoesNotVerify) {
  const std::string td = "cluster.local";
  auto real = Root(td);
  auto impostor_ca = Root(td);
  auto impostor = Leaf(impostor_ca, ControllerId(td), 1h, {}, Usage::kServer);
  TrustBundle bundle({real.certificate()});
  auto r = bundle.VerifyIdentity({impostor, impostor_ca.certificate()}, ControllerId(td), Clock::now(), Usage::kServer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("self-signed certificate in certificate chain"), std::string::npos)
      << r.status().message();
}

TEST(Pki, BundlePemRoundTrip) {
  auto a = Root("cluster.local"), b = Root("cluster.local");
  TrustBundle bundle({a.certificate(), b.certificate()});
  auto back = TrustBundle::FromPem(bundle.ToPem());
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->roots().size(), 2u);
  EXPECT_TRUE(back->Contains(a.certificate().Sha256Fingerprint()));
  EXPECT_TRUE(back->Contains(b.certificate().Sha256Fingerprint()));
  EXPECT_FALSE(back->Contains(std::string(64, '0')));
  auto leaf = Leaf(a, NodeId("cluster.local", "x"));
  auto not_ca = TrustBundle::FromPem(leaf.ToPem());
  ASSERT_FALSE(not_ca.ok());
  EXPECT_NE(not_ca.status().message().find("not a CA"), std::string::npos);
  auto truncated = Certificate::ChainFromPem(bundle.ToPem().substr(0, 900));
  EXPECT_FALSE(truncated.ok());
  EXPECT_FALSE(Certificate::ChainFromPem("").ok());
}

TEST(Pki, SpiffeIdTable) {
  struct Row {
    const char* id;
    bool ok;
  };
  for (const Row& r : std::vector<Row>{{"spiffe://cluster.local/weft/node/n1", true},
                                       {"spiffe://cluster.local", true},
                                       {"spiffe://cluster.local/ns/default/sa/web", true},
                                       {"http://cluster.local/x", false},
                                       {"spiffe://Cluster.local/x", false},
                                       {"spiffe:///x", false},
                                       {"spiffe://td//x", false},
                                       {"spiffe://td/x/", false},
                                       {"spiffe://td/../x", false},
                                       {"spiffe://td/a b", false},
                                       {"spiffe://td/a%2f", false}}) {
    EXPECT_EQ(ValidateSpiffeId(r.id).ok(), r.ok) << r.id << ": " << ValidateSpiffeId(r.id).message();
  }
  EXPECT_EQ(TrustDomainOf("spiffe://td.local/weft/controller"), "td.local");
  EXPECT_EQ(TrustDomainOf("nope"), "");
}

TEST(Pki, WeftIdentityTable) {
  const std::string td = "cluster.local";
  struct Row {
    std::string id;
    bool ok;
    Role role;
    std::string name;
  };
  for (const Row& r : std::vector<Row>{
           {ControllerId(td), true, Role::kController, ""},
           {NodeId(td, "node1"), true, Role::kNode, "node1"},
           {AdminId(td, "alice"), true, Role::kAdmin, "alice"},
           {NodeId("other.local", "node1"), false, Role::kNode, ""},
           {"spiffe://cluster.local/weft/node/", false, Role::kNode, ""},
           {"spiffe://cluster.local/weft/node/a/b", false, Role::kNode, ""},
           {"spiffe://cluster.local/weft/node/Node1", false, Role::kNode, ""},
           {"spiffe://cluster.local/weft/root/x", false, Role::kNode, ""},
           {"spiffe://cluster.local/ns/default/sa/web", false, Role::kNode, ""},
       }) {
    auto p = ParseWeftId(r.id, td);
    EXPECT_EQ(p.ok(), r.ok) << r.id << ": " << p.status().message();
    if (p.ok() && r.ok) {
      EXPECT_EQ(p->role, r.role) << r.id;
      EXPECT_EQ(p->name, r.name) << r.id;
    }
  }
  EXPECT_FALSE(ValidateName("node name", "").ok());
  EXPECT_FALSE(ValidateName("node name", std::string(254, 'a')).ok());
  EXPECT_FALSE(ValidateName("node name", "-a").ok());
  EXPECT_TRUE(ValidateName("node name", "cpb-agent-1.x").ok());
  EXPECT_FALSE(ValidateTrustDomain("Cluster").ok());
  EXPECT_FALSE(ValidateTrustDomain("").ok());
}

// The certificate seam (credentials::CertificateSource): a credentials dir is
// read as it is at each call, so a renewal is presented from the next
// handshake; a fixed source is what it was given.
TEST(Pki, CertificateSourcesFixedAndDir) {
  char tmpl[] = "/tmp/weft-pki-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const credentials::Paths paths{root + "/creds"};
  auto ca = Root("cluster.local");
  const pki::TrustBundle bundle(ca.Roots());
  auto key = Key();
  auto issue = [&](std::chrono::seconds life) {
    IssueOptions o;
    o.uri_sans = {NodeId("cluster.local", "node1")};
    o.lifetime = life;
    return ca.Issue(key, o).value();
  };
  ASSERT_TRUE(std::filesystem::create_directory(paths.dir));
  ASSERT_TRUE(credentials::WriteKey(paths, key).ok());
  const Certificate first = issue(1h), second = issue(2h);
  ASSERT_TRUE(credentials::WriteCertificates(paths, {first}, bundle).ok());

  auto dir = credentials::DirSource(paths);
  ASSERT_NE(dir->dir(), nullptr);
  EXPECT_EQ(dir->dir()->dir, paths.dir);
  EXPECT_EQ(dir->Current().value().leaf().Sha256Fingerprint(), first.Sha256Fingerprint());
  ASSERT_TRUE(credentials::WriteCertificates(paths, {second}, bundle).ok());  // a renewal
  EXPECT_EQ(dir->Current().value().leaf().Sha256Fingerprint(), second.Sha256Fingerprint());

  auto fixed = credentials::FixedSource(credentials::Load(paths).value());
  EXPECT_EQ(fixed->dir(), nullptr);
  ASSERT_TRUE(credentials::WriteCertificates(paths, {first}, bundle).ok());
  EXPECT_EQ(fixed->Current().value().leaf().Sha256Fingerprint(), second.Sha256Fingerprint());

  auto missing = credentials::DirSource({root + "/nope"})->Current();
  EXPECT_FALSE(missing.ok());
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace weft::pki
