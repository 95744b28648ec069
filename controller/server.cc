#include "controller/server.hpp"

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "controller/admin_service.hpp"
#include "controller/auth.hpp"
#include "controller/config_service.hpp"
#include "controller/identity_service.hpp"
#include "controller/sqlite_store.hpp"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/transport.hpp"

namespace weft::controller {

namespace {

// The controller's serving identity in <data-dir>/tls (a credentials dir,
// weft/credentials.hpp): a new key at every start, its certificate
// (spiffe://<td>/weft/controller + the listen host + --server-san) re-issued
// by a thread at half its lifetime; the TLS listener's provider re-reads the
// files, so a renewal needs no restart and drops no stream.
class ServingCredentials {
 public:
  static Result<std::unique_ptr<ServingCredentials>> Start(ClusterCa& ca, const std::string& dir,
                                                           std::vector<std::string> sans,
                                                           std::chrono::seconds refresh) {
    WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(dir));
    auto key = pki::PrivateKey::Generate();
    if (!key.ok()) return key.status();
    std::unique_ptr<ServingCredentials> s(new ServingCredentials(ca, dir, std::move(sans), std::move(*key)));
    WEFT_RETURN_IF_ERROR(sys::WriteFileAtomic(s->paths_.key(), s->key_.ToPem(), 0600));
    WEFT_RETURN_IF_ERROR(s->Issue());
    s->provider_ = transport::WatchedCertificates(s->paths_, refresh);
    s->thread_ = std::thread([p = s.get()] { p->Loop(); });
    return s;
  }
  ~ServingCredentials() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::shared_ptr<transport::CertificateProvider> provider() const { return provider_; }

 private:
  ServingCredentials(ClusterCa& ca, std::string dir, std::vector<std::string> sans, pki::PrivateKey key)
      : ca_(ca), paths_{std::move(dir)}, sans_(std::move(sans)), key_(std::move(key)) {}

  Status Issue() {
    auto chain = ca_.IssueServer(key_, sans_);
    if (!chain.ok()) return chain.status().Wrap("serving certificate");
    WEFT_RETURN_IF_ERROR(credentials::WriteCertificates(paths_, *chain, ca_.Bundle()));
    const auto& leaf = chain->front();
    renew_at_ = leaf.NotBefore() + (leaf.NotAfter() - leaf.NotBefore()) / 2;
    spdlog::info("serving certificate {} (SANs: {} IPs, {} DNS names), renewed from {}", *leaf.SpiffeId(),
                 leaf.IpSans().size(), leaf.DnsSans().size(),
                 std::chrono::duration_cast<std::chrono::seconds>(renew_at_.time_since_epoch()).count());
    return Status::Ok();
  }

  void Loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (ca_.clock().WaitUntil(cv_, lock, renew_at_, [&] { return stop_; })) return;
      lock.unlock();
      Status st = Issue();
      lock.lock();
      if (!st.ok()) {
        spdlog::error("renew the serving certificate: {}; retrying in 60 s", st.message());
        renew_at_ = ca_.clock().Now() + std::chrono::seconds(60);
      }
    }
  }

  ClusterCa& ca_;
  const credentials::Paths paths_;
  const std::vector<std::string> sans_;
  const pki::PrivateKey key_;
  std::shared_ptr<transport::CertificateProvider> provider_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  pki::TimePoint renew_at_;
  std::thread thread_;
};

}  // namespace

struct ControllerServer::Impl {
  explicit Impl(NodeRegistryOptions o) : nodes(std::move(o)) {}
  std::unique_ptr<SqliteStore> store;
  NodeRegistry nodes;
  std::unique_ptr<ClusterCa> ca;
  std::unique_ptr<ServingCredentials> serving;
  std::unique_ptr<ConfigHub> hub;
  std::unique_ptr<AdminService> admin;
  std::unique_ptr<IdentityService> identity;
  std::unique_ptr<grpc::Server> server;
  std::string listen_host;
  int port = 0;
  std::string socket_path;

  std::mutex mu;
  std::condition_variable cv;
  bool shut_down = false;  // Shutdown() started
  bool done = false;       // Shutdown() finished
};

namespace {

// Removes a stale socket file (not anything else) and makes its directory
// private (0700, ours: the socket's only access control besides its mode).
Status PrepareSocketPath(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(dir.string()).Wrap("--admin-socket directory"));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::Error("--admin-socket " + path + ": exists and is not a socket", EEXIST);
    if (::unlink(path.c_str()) != 0) return Status::Errno("remove stale socket " + path, errno);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ControllerServer>> ControllerServer::Start(const ServerOptions& opts) {
  if (opts.data_dir.empty()) return Status::Error("--data-dir is required", EINVAL);
  auto vips = VipAllocator::Create(opts.service_cidr, opts.service_cidr_v6, opts.service_entry_cidr,
                                   opts.service_entry_cidr_v6);
  if (!vips.ok()) return vips.status();
  NodeRegistryOptions nopts;
  nopts.forget_disconnected = opts.forget_disconnected;
  nopts.max_disconnected = opts.max_disconnected_nodes;
  nopts.clock = opts.clock;
  auto impl = std::make_unique<Impl>(std::move(nopts));
  auto store = SqliteStore::Open(opts.data_dir, std::move(*vips), opts.init);
  if (!store.ok()) return store.status();
  impl->store = std::move(*store);
  CaOptions ca_opts = opts.ca;
  if (opts.clock) ca_opts.clock = opts.clock;
  auto ca = ClusterCa::Open(*impl->store, ca_opts);
  if (!ca.ok()) return ca.status();
  impl->ca = std::move(*ca);
  // Identity numbers and policy ids persist in the store (it outlives the hub:
  // shutdown resets the hub first), so a restart keeps them.
  CompilerOptions copts;
  copts.state = impl->store.get();
  HubOptions hopts;
  hopts.store_id = impl->store->store_id();
  hopts.hello_timeout = opts.hello_timeout;
  hopts.max_streams = opts.max_streams;
  impl->hub = std::make_unique<ConfigHub>(impl->nodes, copts, hopts);
  auto all = impl->store->LoadAll();
  impl->hub->Reset(all, impl->store->Revision());
  impl->admin = std::make_unique<AdminService>(*impl->store, *impl->hub, impl->nodes, *impl->ca,
                                               impl->store->store_id());
  impl->identity = std::make_unique<IdentityService>(*impl->ca);
  // ConfigDiscovery.Stream: a node certificate (bound to its node) or the unix socket.
  impl->hub->SetStreamAuthorizer([ca = impl->ca.get()](const grpc::CallbackServerContext& ctx) {
    Caller who = Identify(ctx, ca->trust_domain());
    grpc::Status st = RequireNode(who, "ConfigDiscovery.Stream", ca->trust_domain(), /*allow_local=*/true);
    StreamAuth a;
    a.ok = st.ok();
    a.unauthenticated = st.error_code() == grpc::StatusCode::UNAUTHENTICATED;
    a.error = st.error_message();
    a.node = who.kind == Caller::Kind::kNode ? who.name : "";
    return a;
  });
  spdlog::info("store {}/weft.db: revision {}, {} resources", opts.data_dir, impl->store->Revision(), all.size());
  all = {};
  malloc_trim(0);  // the loaded copy and the compiler's scratch: give the pages back (see admin_service.cc)

  grpc::ServerBuilder b;
  // Agents ping every 2 s (weft::transport::Dial): allow it, and ping them so
  // that a dead agent shows DISCONNECTED within ~15 s.
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC binds with SO_REUSEPORT by default: a second controller on the same
  // port would then share it silently. Fail instead.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  transport::ConfigureServer(b);  // message limits: big applies and snapshots
  b.RegisterService(impl->hub->service());
  b.RegisterService(impl->admin->service());
  b.RegisterService(impl->identity->service());
  if (!opts.listen.empty()) {
    // host:port or [v6]:port; port 0 picks a free one (tests).
    auto colon = opts.listen.rfind(':');
    std::string port = colon == std::string::npos ? "" : opts.listen.substr(colon + 1);
    bool numeric = !port.empty() && port.size() <= 5 &&
                   port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) <= 65535;
    if (colon == 0 || !numeric || opts.listen[0] == '/' || opts.listen.rfind("unix:", 0) == 0)
      return Status::Error("--listen \"" + opts.listen + "\": expected host:port", EINVAL);
    impl->listen_host = opts.listen.substr(0, colon);
    std::vector<std::string> sans;
    std::string host = impl->listen_host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (!host.empty() && host != "0.0.0.0" && host != "::") sans.push_back(host);
    for (const auto& s : opts.server_sans)
      if (s != host) sans.push_back(s);
    auto serving = ServingCredentials::Start(*impl->ca, opts.data_dir + "/tls", sans, opts.tls_refresh);
    if (!serving.ok()) return serving.status();
    impl->serving = std::move(*serving);
    b.AddListeningPort(opts.listen, transport::TlsServerCredentials(impl->serving->provider()), &impl->port);
  }
  if (!opts.admin_socket.empty()) {
    auto target = transport::GrpcTarget(opts.admin_socket);
    if (!target.ok() || target->rfind("unix:", 0) != 0)
      return Status::Error("--admin-socket \"" + opts.admin_socket + "\": expected an absolute path", EINVAL);
    impl->socket_path = target->substr(5);
    WEFT_RETURN_IF_ERROR(PrepareSocketPath(impl->socket_path));
    b.AddListeningPort(*target, transport::LocalServerCredentials());
  }
  impl->server = b.BuildAndStart();
  if (!impl->server || (!opts.listen.empty() && impl->port == 0))
    return Status::Error("start gRPC server on " + (opts.listen.empty() ? opts.admin_socket : opts.listen) +
                             ": bind failed (address in use or not local?)",
                         EADDRINUSE);
  // The socket is the Admin API with no other check: its owner only (its
  // directory is private too, so no one else could reach it meanwhile).
  if (!impl->socket_path.empty() && ::chmod(impl->socket_path.c_str(), 0600) != 0)
    return Status::Errno("chmod 0600 " + impl->socket_path, errno);
  if (!opts.listen.empty())
    spdlog::info("serving ConfigDiscovery + Admin + NodeIdentity on {}:{} (mutual TLS, trust domain {})",
                 impl->listen_host, impl->port, impl->ca->trust_domain());
  if (!impl->socket_path.empty()) spdlog::info("serving Admin + ConfigDiscovery on unix:{}", impl->socket_path);
  return std::unique_ptr<ControllerServer>(new ControllerServer(std::move(impl)));
}

ControllerServer::ControllerServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControllerServer::~ControllerServer() { Shutdown(); }

int ControllerServer::tcp_port() const { return impl_->port; }
std::string ControllerServer::tcp_target() const {
  return impl_->listen_host + ":" + std::to_string(impl_->port);
}
Store& ControllerServer::store() { return *impl_->store; }
const std::string& ControllerServer::store_id() const { return impl_->store->store_id(); }
ClusterCa& ControllerServer::ca() { return *impl_->ca; }
NodeRegistry& ControllerServer::nodes() { return impl_->nodes; }
size_t ControllerServer::streams() const { return impl_->hub->streams(); }

void ControllerServer::Shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  impl_->hub->Shutdown();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->server->Wait();
  impl_->server.reset();
  impl_->identity.reset();
  impl_->admin.reset();
  impl_->hub.reset();
  impl_->serving.reset();
  const uint64_t rev = impl_->store->Revision();
  impl_->ca.reset();
  impl_->store.reset();
  if (!impl_->socket_path.empty()) ::unlink(impl_->socket_path.c_str());
  spdlog::info("shut down at revision {}", rev);
  {
    std::lock_guard lock(impl_->mu);
    impl_->done = true;
  }
  impl_->cv.notify_all();
}

void ControllerServer::Wait() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->done; });
}

}  // namespace weft::controller
