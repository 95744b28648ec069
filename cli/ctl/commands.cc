// weftctl apply | delete | get | diff | status | node join-token | admin-cert:
// one Admin RPC each, printed kubectl style. Exit codes (cli/command.hpp): 0
// ok; 1 rejected input (bad flags, unreadable files, INVALID_ARGUMENT /
// NOT_FOUND from the controller); 2 the controller cannot be reached
// (UNAVAILABLE, DEADLINE_EXCEEDED) or does not accept us (no or another
// client certificate over TCP: UNAUTHENTICATED, PERMISSION_DENIED). `diff`
// follows kubectl diff instead: 0 no differences, 1 differences, >1 error.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/ctl/address.hpp"
#include "cli/ctl/admin_client.hpp"
#include "cli/ctl/ctl.hpp"
#include "cli/ctl/format.hpp"
#include "cli/ctl/inputs.hpp"
#include "cli/ctl/kinds.hpp"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/duration.hpp"
#include "weft/pki.hpp"
#include "weft/transport.hpp"

namespace weft::cli::ctl {

namespace {

using namespace std::chrono_literals;

// Exit codes of `weftctl diff` (kubectl diff's convention).
constexpr int kDiffNone = 0, kDiffFound = 1, kDiffUnreachable = 2, kDiffBadInput = 3;

struct Global {
  std::string controller;  // --controller
  ClientTlsOptions tls;    // --credentials, --cert, --key, --ca, --trust-domain (TCP only)
};

int Fail(int code, const std::string& msg) {
  PrintMessage("weftctl: ", msg);
  return code;
}

// Connects to the chosen controller; on a bad address prints why and sets *rc.
std::unique_ptr<AdminConn> Connect(const Global& g, int* rc) {
  ControllerChoice c = ResolveController(g.controller, std::getenv("WEFT_CONTROLLER"));
  auto conn = ConnectAdmin(c.address, g.tls);
  if (!conn.ok()) {
    // No usable client certificate is "not accepted" (2), a bad address bad input (1).
    *rc = Fail(conn.status().err() == EACCES ? kExitEnv : kExitBadInput,
               conn.status().message() + " (from " + c.source + ")");
    return nullptr;
  }
  return std::make_unique<AdminConn>(std::move(*conn));
}

int RpcFail(const grpc::Status& s, const std::string& what, const AdminConn& conn) {
  std::string msg = DescribeRpcError(s, what, conn.address);
  if (std::string why = conn.Rejection(); !why.empty()) msg += "\n  TLS: " + why;
  if (IsRejectedInput(s.error_code())) {
    // Verbatim: the controller's "file:line:col: Kind ns/name: field: problem" lines.
    PrintMessage("", msg);
    return kExitBadInput;
  }
  return Fail(kExitEnv, msg);
}

void PrintWarnings(const google::protobuf::RepeatedPtrField<weft::v1::Diagnostic>& ws) {
  for (const auto& w : ws) std::fprintf(stderr, "Warning: %s\n", FormatDiagnostic(w).c_str());
}

Result<std::vector<InputFile>> Inputs(const std::vector<std::string>& files, bool recursive) {
  return ReadInputs(files, recursive, std::cin);
}

// ---------------------------------------------------------------- apply

struct ApplyArgs {
  std::vector<std::string> files;
  bool recursive = false;
  bool dry_run = false;
};

int DoApply(const Global& g, const ApplyArgs& a) {
  auto in = Inputs(a.files, a.recursive);
  if (!in.ok()) {
    PrintInputError(in.status());
    return kExitBadInput;
  }
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return rc;
  weft::v1::ApplyRequest req;
  for (const auto& f : *in) {
    auto* sf = req.add_files();
    sf->set_name(f.name);
    sf->set_content(f.content);
  }
  req.set_dry_run(a.dry_run);
  weft::v1::ApplyResponse resp;
  auto ctx = Context(60s);
  grpc::Status s = conn->stub->Apply(ctx.get(), req, &resp);
  if (!s.ok()) return RpcFail(s, "apply", *conn);
  for (const auto& c : resp.changes()) std::printf("%s\n", FormatChange(c, a.dry_run).c_str());
  std::fflush(stdout);
  PrintWarnings(resp.warnings());
  return kExitOk;
}

// ---------------------------------------------------------------- delete

struct DeleteArgs {
  std::vector<std::string> files;
  bool recursive = false;
  bool dry_run = false;
  bool ignore_not_found = false;
  std::vector<std::string> positional;  // KIND NAME...
  std::string ns = "default";
};

int DoDelete(const Global& g, const DeleteArgs& a) {
  weft::v1::DeleteRequest req;
  if (!a.files.empty()) {
    if (!a.positional.empty()) return Fail(kExitBadInput, "delete: give either -f FILE or KIND NAME..., not both");
    auto in = Inputs(a.files, a.recursive);
    if (!in.ok()) {
      PrintInputError(in.status());
      return kExitBadInput;
    }
    for (const auto& f : *in) {
      auto* sf = req.add_files();
      sf->set_name(f.name);
      sf->set_content(f.content);
    }
  } else {
    if (a.positional.size() < 2) return Fail(kExitBadInput, "delete: expected -f FILE or KIND NAME [NAME...] [-n NS]");
    std::string kind = CanonicalKind(a.positional[0]);
    for (size_t i = 1; i < a.positional.size(); ++i) {
      auto* r = req.add_refs();
      r->set_kind(kind);
      r->set_namespace_(a.ns);
      r->set_name(a.positional[i]);
    }
  }
  req.set_dry_run(a.dry_run);
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return rc;
  weft::v1::DeleteResponse resp;
  auto ctx = Context(60s);
  grpc::Status s = conn->stub->Delete(ctx.get(), req, &resp);
  if (!s.ok()) {
    if (a.ignore_not_found && s.error_code() == grpc::StatusCode::NOT_FOUND) return kExitOk;
    return RpcFail(s, "delete", *conn);
  }
  for (const auto& c : resp.changes()) std::printf("%s\n", FormatChange(c, a.dry_run).c_str());
  return kExitOk;
}

// ---------------------------------------------------------------- get

struct GetArgs {
  std::string kind;
  std::string name;
  std::string ns = "default";
  bool all_namespaces = false;
  std::string output;  // "", wide, yaml, json
};

int DoGet(const Global& g, const GetArgs& a) {
  GetFormat fmt = GetFormat::kTable;
  if (a.output == "wide") fmt = GetFormat::kWide;
  else if (a.output == "yaml") fmt = GetFormat::kYaml;
  else if (a.output == "json") fmt = GetFormat::kJson;
  else if (!a.output.empty()) return Fail(kExitBadInput, "-o " + a.output + ": expected yaml, json or wide");
  if (a.all_namespaces && !a.name.empty()) return Fail(kExitBadInput, "get: a NAME cannot be combined with -A");
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return rc;
  weft::v1::GetRequest req;
  req.set_kind(CanonicalKind(a.kind));
  req.set_namespace_(a.all_namespaces ? "" : a.ns);
  req.set_name(a.name);
  weft::v1::GetResponse resp;
  auto ctx = Context(30s);
  grpc::Status s = conn->stub->Get(ctx.get(), req, &resp);
  if (!s.ok()) return RpcFail(s, "get", *conn);
  std::vector<weft::v1::Resource> rs(resp.resources().begin(), resp.resources().end());
  if (rs.empty()) {
    if (!a.name.empty())  // a controller that answers an empty list for a name
      return Fail(kExitBadInput, DisplayKind(req.kind()) + " \"" + a.name + "\" not found");
    if (fmt == GetFormat::kJson) {
      std::printf("%s", FormatGetJson(rs, false).c_str());
    } else if (fmt != GetFormat::kYaml) {
      std::string where = a.all_namespaces ? "" : " in " + a.ns + " namespace";
      std::fprintf(stderr, "No resources found%s.\n", where.c_str());
    }
    return kExitOk;
  }
  bool single = !a.name.empty();
  switch (fmt) {
    case GetFormat::kYaml: std::printf("%s", FormatGetYaml(rs, single).c_str()); break;
    case GetFormat::kJson: std::printf("%s", FormatGetJson(rs, single).c_str()); break;
    default:
      std::printf("%s", FormatGetTable(rs, a.all_namespaces, fmt == GetFormat::kWide, std::time(nullptr)).c_str());
  }
  return kExitOk;
}

// ---------------------------------------------------------------- diff

struct DiffArgs {
  std::vector<std::string> files;
  bool recursive = false;
};

int DoDiff(const Global& g, const DiffArgs& a) {
  auto in = Inputs(a.files, a.recursive);
  if (!in.ok()) {
    PrintInputError(in.status());
    return kDiffBadInput;
  }
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return kDiffBadInput;
  weft::v1::DiffRequest req;
  for (const auto& f : *in) {
    auto* sf = req.add_files();
    sf->set_name(f.name);
    sf->set_content(f.content);
  }
  weft::v1::DiffResponse resp;
  auto ctx = Context(60s);
  grpc::Status s = conn->stub->Diff(ctx.get(), req, &resp);
  if (!s.ok()) {
    int code = RpcFail(s, "diff", *conn);
    return code == kExitBadInput ? kDiffBadInput : kDiffUnreachable;
  }
  bool any = false;
  for (const auto& d : resp.diffs()) {
    if (d.action() == "unchanged" || d.diff().empty()) continue;
    any = true;
    const auto& r = d.ref();
    std::string id = DisplayKind(r.kind()) + "/" + (r.namespace_().empty() ? "" : r.namespace_() + "/") + r.name();
    std::string body = d.diff();
    if (body.rfind("--- ", 0) != 0)
      body = "--- live/" + id + "\n+++ applied/" + id + "\n" + body;
    std::printf("diff -u live/%s applied/%s  (%s)\n%s%s", id.c_str(), id.c_str(), d.action().c_str(), body.c_str(),
                body.back() == '\n' ? "" : "\n");
  }
  std::fflush(stdout);
  PrintWarnings(resp.warnings());
  return any ? kDiffFound : kDiffNone;
}

// ---------------------------------------------------------------- status

struct StatusArgs {
  std::string output;  // "" or json
};

int DoStatus(const Global& g, const StatusArgs& a) {
  if (!a.output.empty() && a.output != "json") return Fail(kExitBadInput, "-o " + a.output + ": expected json");
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return rc;
  weft::v1::StatusRequest req;
  weft::v1::StatusResponse resp;
  auto ctx = Context(15s);
  grpc::Status s = conn->stub->Status(ctx.get(), req, &resp);
  if (!s.ok()) return RpcFail(s, "status", *conn);
  if (a.output == "json") {
    nlohmann::json j = {{"revision", resp.revision()},
                        {"store_id", resp.store_id()},
                        {"controller_heap_bytes", resp.controller_heap_bytes()},
                        {"nodes", nlohmann::json::array()}};
    for (const auto& n : resp.nodes())
      j["nodes"].push_back({{"node", n.node()},
                            {"state", n.state()},
                            {"connected", n.connected()},
                            {"sent", n.last_sent_version()},
                            {"acked", n.last_acked_version()},
                            {"nacked", n.last_nacked_version()},
                            {"nack_reason", n.nack_reason()},
                            {"agent_version", n.agent_version()},
                            {"last_seen_unix_ms", n.last_seen_unix_ms()}});
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  std::printf("revision %llu\n", static_cast<unsigned long long>(resp.revision()));
  if (resp.nodes().empty()) {
    std::printf("no nodes have connected\n");
    return kExitOk;
  }
  std::printf("%s", FormatStatus(resp).c_str());
  return kExitOk;
}

// ---------------------------------------------------------------- node join-token

struct JoinTokenArgs {
  std::string node;
  std::string ttl = "1h";
};

int DoJoinToken(const Global& g, const JoinTokenArgs& a) {
  auto ttl = ParseDuration(a.ttl);
  if (!ttl.ok()) return Fail(kExitBadInput, "--ttl: " + ttl.status().message());
  if (auto st = pki::ValidateName("node name", a.node); !st.ok()) return Fail(kExitBadInput, st.message());
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return rc;
  weft::v1::JoinTokenRequest req;
  req.set_node(a.node);
  req.set_ttl_seconds(static_cast<uint32_t>(ttl->count()));
  weft::v1::JoinTokenResponse resp;
  auto ctx = Context(15s);
  grpc::Status s = conn->stub->CreateJoinToken(ctx.get(), req, &resp);
  if (!s.ok()) return RpcFail(s, "node join-token", *conn);
  std::printf("%s\n", resp.token().c_str());
  std::fflush(stdout);
  std::time_t until = static_cast<std::time_t>(resp.expires_unix());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&until));
  std::fprintf(stderr,
               "join token for node %s: single use, expires %s, pins CA SHA-256 %s.\n"
               "Give it to the node's agent in a file (mode 0600): weft-agent run --node %s --controller HOST:PORT "
               "--join-token-file FILE ... (never on a command line)\n",
               a.node.c_str(), when, resp.ca_sha256().c_str(), a.node.c_str());
  return kExitOk;
}

// ---------------------------------------------------------------- admin-cert

struct AdminCertArgs {
  std::string name;
  std::string out;  // default DefaultCredentialsDir()
  std::string ttl = "24h";
};

// The key is made here and never leaves this machine; the controller signs a
// CSR. Only on the controller's unix socket (root on its host).
int DoAdminCert(const Global& g, const AdminCertArgs& a) {
  auto ttl = ParseDuration(a.ttl);
  if (!ttl.ok()) return Fail(kExitBadInput, "--ttl: " + ttl.status().message());
  if (auto st = pki::ValidateName("admin name", a.name); !st.ok()) return Fail(kExitBadInput, st.message());
  ControllerChoice c = ResolveController(g.controller, std::getenv("WEFT_CONTROLLER"));
  if (!transport::IsUnixAddress(c.address))
    return Fail(kExitBadInput, "admin-cert: the controller's unix socket is needed (root on the controller's host), "
                               "not " + c.address + " (from " + c.source + ")");
  credentials::Paths p{a.out.empty() ? DefaultCredentialsDir() : a.out};
  if (auto st = sys::MakePrivateDir(p.dir); !st.ok()) return Fail(kExitEnv, st.message());
  // A key already there is kept (a renewal); otherwise a new one.
  std::optional<pki::PrivateKey> key;
  if (auto pem = sys::ReadSmallFile(p.key(), pki::kMaxPemBytes); pem.ok()) {
    auto k = pki::PrivateKey::FromPem(*pem);
    if (!k.ok()) return Fail(kExitBadInput, p.key() + ": " + k.status().message() + " (remove it to make a new key)");
    key = *k;
  } else {
    auto k = pki::PrivateKey::Generate();
    if (!k.ok()) return Fail(kExitEnv, k.status().message());
    if (auto st = credentials::WriteKey(p, *k); !st.ok()) return Fail(kExitEnv, st.message());
    key = *k;
  }
  auto csr = pki::CertificateRequest::Create(*key, a.name);
  if (!csr.ok()) return Fail(kExitEnv, csr.status().message());
  int rc = 0;
  auto conn = Connect(g, &rc);
  if (!conn) return rc;
  weft::v1::AdminCertificateRequest req;
  req.set_name(a.name);
  req.set_csr_pem(csr->ToPem());
  req.set_ttl_seconds(static_cast<uint32_t>(std::min<int64_t>(ttl->count(), UINT32_MAX)));
  weft::v1::CertificateResponse resp;
  auto ctx = Context(15s);
  grpc::Status s = conn->stub->IssueAdminCertificate(ctx.get(), req, &resp);
  if (!s.ok()) return RpcFail(s, "admin-cert", *conn);
  auto chain = pki::Certificate::ChainFromPem(resp.certificate_chain_pem());
  auto bundle = pki::TrustBundle::FromPem(resp.trust_bundle_pem());
  if (!chain.ok() || !bundle.ok() || !chain->front().Matches(*key))
    return Fail(kExitEnv, "admin-cert: the controller's answer is not a certificate for our key");
  if (auto st = credentials::WriteCertificates(p, *chain, *bundle); !st.ok()) return Fail(kExitEnv, st.message());
  std::time_t until = static_cast<std::time_t>(resp.not_after_unix());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&until));
  std::printf("%s until %s in %s\nuse it: weftctl --controller HOST:PORT --credentials %s ...\n",
              resp.spiffe_id().c_str(), when, p.dir.c_str(), p.dir.c_str());
  return kExitOk;
}

void AddFileOptions(CLI::App* c, std::vector<std::string>* files, bool* recursive, bool required) {
  auto* o = c->add_option("-f,--filename", *files, "FILE, DIR (its *.yaml/*.yml/*.json, sorted) or - for stdin; repeatable");
  if (required) o->required();
  c->add_flag("-R,--recursive", *recursive, "with -f DIR: also the files of its subdirectories");
}

}  // namespace

void Register(CLI::App& root, int* exit_code) {
  auto g = std::make_shared<Global>();
  // Global: before or after the subcommand (`weftctl --controller X get svc` or `weftctl get svc --controller X`).
  const char* ctl_help =
      "controller address: host:port, unix:///path or /path (default: $WEFT_CONTROLLER, else the admin socket of the "
      "one running lab, else unix:///run/weft/controller/admin.sock)";
  // Global: like --controller, before or after the subcommand.
  auto add_global = [g, ctl_help](CLI::App* c) {
    c->add_option("--controller", g->controller, ctl_help);
    c->add_option("--credentials", g->tls.credentials_dir,
                  "TCP controller: dir with key.pem, cert.pem, ca.pem (an admin certificate; default "
                  "$WEFT_CREDENTIALS, else ~/.weft/credentials)");
    c->add_option("--cert", g->tls.cert, "TCP controller: client certificate PEM (instead of the dir's)");
    c->add_option("--key", g->tls.key, "TCP controller: client key PEM (instead of the dir's)");
    c->add_option("--ca", g->tls.ca, "TCP controller: CA bundle PEM to verify the controller (instead of the dir's)");
    c->add_option("--trust-domain", g->tls.trust_domain, "TCP controller: its SPIFFE trust domain")
        ->capture_default_str();
  };
  add_global(&root);
  auto with_controller = [&](CLI::App* c) { add_global(c); };

  auto ap = std::make_shared<ApplyArgs>();
  CLI::App* c_apply = root.add_subcommand(
      "apply", "create or update resources from files, in one transaction\n"
               "prints `kind/name created|configured|unchanged`, then warnings; exit 0 ok, 1 rejected, 2 unreachable");
  AddFileOptions(c_apply, &ap->files, &ap->recursive, true);
  c_apply->add_flag("--dry-run", ap->dry_run, "validate and report what would change; store nothing");
  with_controller(c_apply);
  c_apply->callback([g, ap, exit_code] { *exit_code = DoApply(*g, *ap); });

  auto de = std::make_shared<DeleteArgs>();
  CLI::App* c_delete = root.add_subcommand(
      "delete", "delete the resources named by files (-f) or KIND NAME...; exit 0 ok, 1 rejected/not found, 2 unreachable");
  AddFileOptions(c_delete, &de->files, &de->recursive, false);
  c_delete->add_option("args", de->positional, "KIND NAME [NAME...]");
  c_delete->add_option("-n,--namespace", de->ns, "namespace of KIND NAME")->default_val("default");
  c_delete->add_flag("--dry-run", de->dry_run, "report what would be deleted; delete nothing");
  c_delete->add_flag("--ignore-not-found", de->ignore_not_found, "exit 0 if a resource does not exist");
  with_controller(c_delete);
  c_delete->callback([g, de, exit_code] { *exit_code = DoDelete(*g, *de); });

  auto ge = std::make_shared<GetArgs>();
  CLI::App* c_get = root.add_subcommand(
      "get", "list or show resources (KIND: Kind, plural or short name: svc, vs, dr, se, gw, we, ap, pa, deploy)");
  c_get->add_option("kind", ge->kind, "resource kind")->required();
  c_get->add_option("name", ge->name, "resource name (default: list)");
  c_get->add_option("-n,--namespace", ge->ns, "namespace")->default_val("default");
  c_get->add_flag("-A,--all-namespaces", ge->all_namespaces, "every namespace (adds a NAMESPACE column)");
  c_get->add_option("-o,--output", ge->output, "yaml | json | wide (default: a table)");
  with_controller(c_get);
  c_get->callback([g, ge, exit_code] { *exit_code = DoGet(*g, *ge); });

  auto di = std::make_shared<DiffArgs>();
  CLI::App* c_diff = root.add_subcommand(
      "diff", "unified diff between the stored resources and the files (nothing is changed)\n"
              "exit codes (kubectl diff): 0 no differences, 1 differences found, 2 controller unreachable or failed, "
              "3 rejected input");
  AddFileOptions(c_diff, &di->files, &di->recursive, true);
  with_controller(c_diff);
  c_diff->callback([g, di, exit_code] { *exit_code = DoDiff(*g, *di); });

  auto st = std::make_shared<StatusArgs>();
  CLI::App* c_status = root.add_subcommand(
      "status", "per node: NODE STATE (SYNCED|STALE|NACKED|BEHIND|DISCONNECTED) SENT ACKED AGENT-VERSION REASON");
  c_status->add_option("-o,--output", st->output, "json: one JSON object");
  with_controller(c_status);
  c_status->callback([g, st, exit_code] { *exit_code = DoStatus(*g, *st); });

  CLI::App* c_node = root.add_subcommand("node", "node bootstrap");
  c_node->require_subcommand(1);
  auto jt = std::make_shared<JoinTokenArgs>();
  CLI::App* c_jt = c_node->add_subcommand(
      "join-token", "print a one-time join token for NODE (single use, expiring, bound to NODE; pins the CA)\n"
                    "needs admin rights: the unix socket, or an admin certificate over TCP");
  c_jt->add_option("node", jt->node, "node name")->required();
  c_jt->add_option("--ttl", jt->ttl, "lifetime: 90s, 30m, 1h, 7d (at most 7d)")->capture_default_str();
  with_controller(c_jt);
  c_jt->callback([g, jt, exit_code] { *exit_code = DoJoinToken(*g, *jt); });

  auto ac = std::make_shared<AdminCertArgs>();
  CLI::App* c_ac = root.add_subcommand(
      "admin-cert", "get an admin client certificate for weftctl over TCP (spiffe://<td>/weft/admin/NAME): the key\n"
                    "is made here, the controller signs it; only on the controller's unix socket (root)");
  c_ac->add_option("name", ac->name, "admin name (a-z, 0-9, '-', '.')")->required();
  c_ac->add_option("--out", ac->out, "credentials dir to write (default $WEFT_CREDENTIALS, else ~/.weft/credentials)");
  c_ac->add_option("--ttl", ac->ttl, "lifetime: 8h, 24h, 7d (at most 7d)")->capture_default_str();
  with_controller(c_ac);
  c_ac->callback([g, ac, exit_code] { *exit_code = DoAdminCert(*g, *ac); });
}

}  // namespace weft::cli::ctl
