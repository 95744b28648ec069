#include "controller/admin_service.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <optional>
#include <atomic>
#include <algorithm>
#include <map>
#include <iterator>
#include <set>
#include <mutex>

#include "config/limits.hpp"
#include "config/resources.hpp"
#include "controller/auth.hpp"
#include "controller/kinds.hpp"
#include "controller/memory_trim.hpp"
#include "controller/workload_addresses.hpp"
#include "controller/unified_diff.hpp"
#include "weft/transport.hpp"
#include "weft/v1/admin.grpc.pb.h"

namespace weft::controller {

// An apply at the request limit must reach the handler (which says what is
// wrong with it), not be cut by the transport first.
static_assert(config::kMaxRequestBytes + (1 << 20) <= static_cast<size_t>(transport::kMaxServerReceiveBytes));
namespace {

namespace v1 = weft::v1;

grpc::Status ToGrpc(const Status& st) {
  if (st.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (st.err()) {
    case EINVAL: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case ENOENT: code = grpc::StatusCode::NOT_FOUND; break;
    case EEXIST: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case ENOSPC: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    default: break;
  }
  return grpc::Status(code, st.message());
}

grpc::Status Invalid(const std::string& msg) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg); }

void ToProto(const config::Diagnostic& d, v1::Diagnostic* out) {
  out->set_severity(d.severity == config::Severity::kError ? v1::ERROR : v1::WARNING);
  out->set_file(d.pos.file);
  out->set_line(static_cast<uint32_t>(std::max(d.pos.line, 0)));
  out->set_column(static_cast<uint32_t>(std::max(d.pos.column, 0)));
  out->set_resource(d.resource);
  out->set_field(d.field);
  out->set_message(d.message);
  out->set_code(d.code);
}

void ToProto(const config::ResourceKey& k, v1::ResourceRef* out) {
  out->set_kind(k.kind);
  out->set_namespace_(k.ns);
  out->set_name(k.name);
}

void ToProto(const Change& c, v1::ResourceChange* out) {
  ToProto(c.key, out->mutable_ref());
  out->set_action(ToString(c.action));
  out->set_resource_version(c.resource_version);
}

std::string Where(const config::SourcePos& p) {
  return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column > 0 ? p.column : 1);
}

// Parses every file; every error of every file, one per line, or the
// resources in file order. A kind/ns/name defined in two files is an error.
// Bounded before any parsing (config/limits.hpp): all files together at most
// kMaxRequestBytes, and at most kMaxDocuments documents.
Result<std::vector<config::Resource>> ParseFiles(const google::protobuf::RepeatedPtrField<v1::SourceFile>& files) {
  size_t bytes = 0;
  for (const auto& f : files) bytes += f.content().size();
  if (bytes > config::kMaxRequestBytes) {
    return Status::Error("request: " + std::to_string(bytes) + " bytes in " + std::to_string(files.size()) +
                             " files, more than " + config::FormatBytes(config::kMaxRequestBytes) +
                             " (the limit per request); split it",
                         EINVAL);
  }
  std::vector<config::Resource> all;
  std::string errors;
  std::map<config::ResourceKey, config::SourcePos> first;
  for (const auto& f : files) {
    const std::string name = f.name().empty() ? "-" : config::DisplayName(f.name());
    config::ParseOptions options;
    options.max_documents = config::kMaxDocuments - std::min(all.size(), config::kMaxDocuments);
    auto r = config::ParseResources(f.content(), name, options);
    if (!r.ok()) {
      errors += r.status().message();
      if (!errors.empty() && errors.back() != '\n') errors += '\n';
      continue;
    }
    for (auto& res : *r) {
      auto [it, fresh] = first.emplace(res.key, res.pos);
      if (!fresh) {
        errors += Where(res.pos) + ": " + res.key.ToString() + ": defined again (first at " + Where(it->second) + ")\n";
        continue;
      }
      all.push_back(std::move(res));
    }
  }
  if (!errors.empty()) {
    errors.pop_back();
    return Status::Error(errors, EINVAL);
  }
  return all;
}

}  // namespace

struct AdminService::Impl : public v1::Admin::CallbackService {
  Impl(Store& s, ConfigHub& h, NodeRegistry& n, ClusterCa& c, std::string id)
      : store(s), hub(h), nodes(n), ca(c), store_id(std::move(id)) {}

  template <typename Req, typename Resp>
  using Handler = grpc::Status (Impl::*)(const Req&, Resp&);

  // Every call is authorized first (controller/auth.hpp): the unix socket or
  // an admin certificate; IssueAdminCertificate the unix socket only.
  enum class Who { kAdmin, kLocalOnly };
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, const char* rpc, const Req* req, Resp* resp,
                                grpc::Status (Impl::*fn)(const Req&, Resp&), Who who = Who::kAdmin) {
    auto* reactor = ctx->DefaultReactor();
    Caller caller = Identify(*ctx, ca.trust_domain());
    grpc::Status auth = who == Who::kLocalOnly ? RequireLocal(caller, rpc)
                                               : RequireAdmin(caller, rpc, ca.trust_domain());
    if (!auth.ok()) {
      spdlog::warn("{}", auth.error_message());
      reactor->Finish(auth);
      return reactor;
    }
    reactor->Finish((this->*fn)(*req, *resp));
    return reactor;
  }

  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* c, const v1::ApplyRequest* q,
                                  v1::ApplyResponse* r) override {
    return Run(c, "Admin.Apply", q, r, &Impl::DoApply);
  }
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* c, const v1::DeleteRequest* q,
                                   v1::DeleteResponse* r) override {
    return Run(c, "Admin.Delete", q, r, &Impl::DoDelete);
  }
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* c, const v1::GetRequest* q,
                                v1::GetResponse* r) override {
    return Run(c, "Admin.Get", q, r, &Impl::DoGet);
  }
  grpc::ServerUnaryReactor* Diff(grpc::CallbackServerContext* c, const v1::DiffRequest* q,
                                 v1::DiffResponse* r) override {
    return Run(c, "Admin.Diff", q, r, &Impl::DoDiff);
  }
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* c, const v1::StatusRequest* q,
                                   v1::StatusResponse* r) override {
    return Run(c, "Admin.Status", q, r, &Impl::DoStatus);
  }
  grpc::ServerUnaryReactor* CreateJoinToken(grpc::CallbackServerContext* c, const v1::JoinTokenRequest* q,
                                            v1::JoinTokenResponse* r) override {
    return Run(c, "Admin.CreateJoinToken", q, r, &Impl::DoCreateJoinToken);
  }
  grpc::ServerUnaryReactor* IssueAdminCertificate(grpc::CallbackServerContext* c,
                                                  const v1::AdminCertificateRequest* q,
                                                  v1::CertificateResponse* r) override {
    return Run(c, "Admin.IssueAdminCertificate", q, r, &Impl::DoIssueAdminCertificate, Who::kLocalOnly);
  }

  grpc::Status DoCreateJoinToken(const v1::JoinTokenRequest& req, v1::JoinTokenResponse& resp) {
    auto t = ca.CreateJoinToken(req.node(), std::chrono::seconds(req.ttl_seconds()), ca.clock().Now());
    if (!t.ok()) return ToGrpc(t.status());
    resp.set_token(t->token);
    resp.set_expires_unix(std::chrono::duration_cast<std::chrono::seconds>(t->expires.time_since_epoch()).count());
    resp.set_ca_sha256(ca.PinnedFingerprint());
    return grpc::Status::OK;
  }

  grpc::Status DoIssueAdminCertificate(const v1::AdminCertificateRequest& req, v1::CertificateResponse& resp) {
    auto chain = ca.IssueAdmin(req.name(), req.csr_pem(), std::chrono::seconds(req.ttl_seconds()));
    if (!chain.ok()) return ToGrpc(chain.status());
    resp.set_certificate_chain_pem(pki::ChainToPem(*chain));
    resp.set_trust_bundle_pem(ca.Bundle().ToPem());
    resp.set_not_after_unix(
        std::chrono::duration_cast<std::chrono::seconds>(chain->front().NotAfter().time_since_epoch()).count());
    auto id = chain->front().SpiffeId();
    resp.set_spiffe_id(id.ok() ? *id : "");
    spdlog::info("admin certificate issued: {} until {}", resp.spiffe_id(), resp.not_after_unix());
    return grpc::Status::OK;
  }

  // Analyze over what the store would hold: stored objects with `applied`
  // replacing those of the same key.
  // config::Analyze reads only these kinds (config/analyze.cc: the registry of
  // hosts, subsets and gateways, and the VirtualServices it checks), so only
  // they are copied out of the store: at 10,000 Services / 100,000
  // WorkloadEntries that is a tenth of the store, not all of it per apply.
  static constexpr const char* kAnalyzedKinds[] = {"Service", "ServiceEntry", "DestinationRule", "Gateway",
                                                   "VirtualService"};
  static bool Analyzed(const std::string& kind) {
    for (const char* k : kAnalyzedKinds)
      if (kind == k) return true;
    return false;
  }
  // Warnings depend only on the analyzed kinds: the last result is reused
  // until a write touches one of them (a WorkloadEntry change, the common
  // endpoint update, then costs no analysis at all). `stored`: the store
  // already holds `applied` (a real apply), so the result is the store's.
  struct WarningsCache {
    uint64_t epoch = 0;
    std::vector<config::Diagnostic> diagnostics;
  };
  void NoteWrite(const WriteResult& res) {  // under write_mu, after a real write
    bool touched = std::any_of(res.upserted.begin(), res.upserted.end(),
                               [](const config::Resource& r) { return Analyzed(r.key.kind); }) ||
                   std::any_of(res.deleted.begin(), res.deleted.end(),
                               [](const config::ResourceKey& k) { return Analyzed(k.kind); });
    if (touched) ++analyzed_epoch;
  }
  std::vector<config::Diagnostic> Warnings(const std::vector<config::Resource>& applied, bool stored) {
    const bool overlay = !stored && std::any_of(applied.begin(), applied.end(), [](const config::Resource& r) {
      return Analyzed(r.key.kind);
    });
    const uint64_t epoch = analyzed_epoch.load();
    if (!overlay) {
      std::lock_guard lock(warnings_mu);
      if (warnings_cache && warnings_cache->epoch == epoch) return warnings_cache->diagnostics;
    }
    auto out = AnalyzeStore(overlay ? applied : std::vector<config::Resource>{});
    if (!overlay && analyzed_epoch.load() == epoch) {  // no write of an analyzed kind meanwhile
      std::lock_guard lock(warnings_mu);
      warnings_cache = WarningsCache{epoch, out};
    }
    return out;
  }
  std::vector<config::Diagnostic> AnalyzeStore(const std::vector<config::Resource>& applied) {
    std::set<config::ResourceKey> replaced;
    for (const auto& r : applied) replaced.insert(r.key);
    std::vector<config::Resource> all;
    for (const char* kind : kAnalyzedKinds) {
      auto part = store.List(kind, "");
      std::move(part.begin(), part.end(), std::back_inserter(all));
    }
    std::erase_if(all, [&](const config::Resource& r) { return replaced.count(r.key) > 0; });
    for (const auto& r : applied)
      if (Analyzed(r.key.kind)) all.push_back(r);
    return config::Analyze(all);
  }

  // After a big request (a whole cluster's YAML: ~21 MB, 110,000 documents)
  // the parser's trees, the parsed and analyzed copies are freed, but glibc
  // keeps the pages in its per-thread arenas: the controller's RSS stayed
  // ~2x what it holds. Every request that parses files (accepted, refused or
  // dry run alike) asks the trimmer to give them back once it is answered
  // (memory_trim.hpp says why not here).
  grpc::Status DoApply(const v1::ApplyRequest& req, v1::ApplyResponse& resp) {
    grpc::Status st = DoApplyFiles(req, resp);
    trimmer.Request();
    return st;
  }

  grpc::Status DoApplyFiles(const v1::ApplyRequest& req, v1::ApplyResponse& resp) {
    auto parsed = ParseFiles(req.files());
    if (!parsed.ok()) return ToGrpc(parsed.status());
    std::unique_lock lock(write_mu);
    if (weft::Status st = Addresses().Check(*parsed); !st.ok()) return ToGrpc(st);
    auto res = store.Apply(*parsed, req.dry_run());
    if (!res.ok()) return ToGrpc(res.status());
    if (!req.dry_run()) addresses.Update(*res);
    // Push first, analyze after: the warnings only go back to the caller, so
    // the agents never wait for a whole-store analysis. After a real apply the
    // store already holds `parsed`; for a dry run Warnings() overlays it.
    if (!req.dry_run() && res->changed()) {
      hub.Publish(res->revision, res->upserted, res->deleted);
      NoteWrite(*res);
    }
    // The analysis only reads the store: the next write need not wait for it
    // (at 110,000 resources it takes over a second).
    lock.unlock();
    for (const auto& d : Warnings(*parsed, /*stored=*/!req.dry_run())) ToProto(d, resp.add_warnings());
    resp.set_revision(res->revision);
    for (const auto& c : res->changes) ToProto(c, resp.add_changes());
    if (!req.dry_run())
      spdlog::info("apply: {} resources, {} changed, revision {}", res->changes.size(), res->upserted.size(),
                   res->revision);
    return grpc::Status::OK;
  }

  grpc::Status DoDelete(const v1::DeleteRequest& req, v1::DeleteResponse& resp) {
    grpc::Status st = DoDeleteKeys(req, resp);
    if (req.files_size() > 0) trimmer.Request();
    return st;
  }

  grpc::Status DoDeleteKeys(const v1::DeleteRequest& req, v1::DeleteResponse& resp) {
    std::vector<config::ResourceKey> keys;
    if (req.files_size() > 0) {
      auto parsed = ParseFiles(req.files());
      if (!parsed.ok()) return ToGrpc(parsed.status());
      for (const auto& r : *parsed) keys.push_back(r.key);
    }
    for (const auto& ref : req.refs()) {
      auto kind = ResolveKind(ref.kind());
      if (!kind.ok()) return ToGrpc(kind.status());
      if (ref.name().empty()) return Invalid("delete " + *kind + ": name is empty");
      keys.push_back({*kind, Namespace(*kind, ref.namespace_()), ref.name()});
    }
    if (keys.empty()) return Invalid("delete: no files and no resources given");
    std::lock_guard lock(write_mu);
    auto res = store.Delete(keys, req.dry_run());
    if (!res.ok()) return ToGrpc(res.status());
    if (!req.dry_run()) Addresses().Update(*res);
    if (!req.dry_run() && res->changed()) {
      hub.Publish(res->revision, res->upserted, res->deleted);
      NoteWrite(*res);
    }
    resp.set_revision(res->revision);
    for (const auto& c : res->changes) ToProto(c, resp.add_changes());
    if (!req.dry_run()) spdlog::info("delete: {} resources, revision {}", res->deleted.size(), res->revision);
    return grpc::Status::OK;
  }

  grpc::Status DoGet(const v1::GetRequest& req, v1::GetResponse& resp) {
    auto kind = ResolveKind(req.kind());
    if (!kind.ok()) return ToGrpc(kind.status());
    std::vector<config::Resource> found;
    if (!req.name().empty()) {
      config::ResourceKey key{*kind, Namespace(*kind, req.namespace_()), req.name()};
      auto r = store.Get(key);
      if (!r) return grpc::Status(grpc::StatusCode::NOT_FOUND, key.ToString() + " not found");
      found.push_back(std::move(*r));
    } else {
      found = store.List(*kind, req.namespace_());
    }
    for (const auto& r : found) {
      auto* out = resp.add_resources();
      out->set_api_version(r.api_version);
      out->set_kind(r.key.kind);
      out->set_namespace_(r.key.ns);
      out->set_name(r.key.name);
      out->set_resource_version(r.resource_version);
      out->set_json(r.object.dump());
      out->set_yaml(config::ToYaml(r.object));
    }
    return grpc::Status::OK;
  }

  grpc::Status DoDiff(const v1::DiffRequest& req, v1::DiffResponse& resp) {
    grpc::Status st = DoDiffFiles(req, resp);
    trimmer.Request();
    return st;
  }

  grpc::Status DoDiffFiles(const v1::DiffRequest& req, v1::DiffResponse& resp) {
    auto parsed = ParseFiles(req.files());
    if (!parsed.ok()) return ToGrpc(parsed.status());
    {
      std::lock_guard lock(write_mu);
      if (weft::Status st = Addresses().Check(*parsed); !st.ok()) return ToGrpc(st);
    }
    for (const auto& d : Warnings(*parsed, /*stored=*/false)) ToProto(d, resp.add_warnings());
    // The dry-run admission gives the objects as they would be stored (VIPs).
    auto res = store.Apply(*parsed, /*dry_run=*/true);
    if (!res.ok()) return ToGrpc(res.status());
    std::map<config::ResourceKey, const config::Resource*> would;
    for (const auto& r : res->upserted) would[r.key] = &r;
    for (const auto& c : res->changes) {
      auto* d = resp.add_diffs();
      ToProto(c.key, d->mutable_ref());
      if (c.action == ChangeAction::kUnchanged) {
        d->set_action("unchanged");
        continue;
      }
      const std::string name = c.key.ToString();
      const config::Resource* next = would.at(c.key);
      std::string before, before_label = name + " (not stored)";
      if (c.action == ChangeAction::kConfigured) {
        auto stored = store.Get(c.key);
        if (stored) {
          before = config::ToYaml(stored->object);
          before_label = name + " (stored, resourceVersion " + std::to_string(stored->resource_version) + ")";
        }
      }
      d->set_action(c.action == ChangeAction::kCreated ? "create" : "update");
      d->set_diff(UnifiedDiff(before, config::ToYaml(next->object), before_label, name + " (applied)"));
    }
    return grpc::Status::OK;
  }

  grpc::Status DoStatus(const v1::StatusRequest&, v1::StatusResponse& resp) {
    resp.set_revision(store.Revision());
    resp.set_store_id(store_id);
    resp.set_controller_heap_bytes(MemoryTrimmer::HeapInUseBytes());
    for (const auto& n : nodes.All()) {
      auto* out = resp.add_nodes();
      out->set_node(n.node);
      out->set_state(ToString(n.state()));
      out->set_connected(n.connected);
      out->set_last_sent_version(n.last_sent_version);
      out->set_last_acked_version(n.last_acked_version);
      out->set_last_nacked_version(n.last_nacked_version);
      out->set_nack_reason(n.nack_reason);
      out->set_agent_version(n.agent_version);
      out->set_last_seen_unix_ms(n.last_seen_unix_ms);
      out->set_agent_applied_version(n.agent_applied_version);
      out->set_agent_store_id(n.agent_store_id);
      out->set_state_reason(n.state_reason);
    }
    return grpc::Status::OK;
  }

  // "" means "default" for namespaced kinds (kubectl), nothing for cluster-scoped ones.
  static std::string Namespace(const std::string& kind, const std::string& ns) {
    for (const auto& k : KnownKinds())
      if (kind == k.kind && !k.namespaced) return "";
    return ns.empty() ? "default" : ns;
  }

  // The WorkloadEntry address index, read from the store on first use (under write_mu).
  WorkloadAddresses& Addresses() {
    if (!addresses.loaded()) addresses.Load(store.List("WorkloadEntry", ""));
    return addresses;
  }

  Store& store;
  ConfigHub& hub;
  NodeRegistry& nodes;
  ClusterCa& ca;
  const std::string store_id;
  std::mutex write_mu;
  WorkloadAddresses addresses;  // one address, one workload (workload_addresses.hpp)
  MemoryTrimmer trimmer;
  std::atomic<uint64_t> analyzed_epoch{0};  // +1 per write that touches an analyzed kind
  std::mutex warnings_mu;
  std::optional<WarningsCache> warnings_cache;
};

AdminService::AdminService(Store& store, ConfigHub& hub, NodeRegistry& nodes, ClusterCa& ca, std::string store_id)
    : impl_(std::make_unique<Impl>(store, hub, nodes, ca, std::move(store_id))) {}
AdminService::~AdminService() = default;
grpc::Service* AdminService::service() { return impl_.get(); }

}  // namespace weft::controller
