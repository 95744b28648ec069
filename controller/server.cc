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

#include "controller/admin_service.hpp"
#include "controller/config_service.hpp"
#include "controller/sqlite_store.hpp"
#include "weft/transport.hpp"

namespace weft::controller {

struct ControllerServer::Impl {
  explicit Impl(NodeRegistryOptions o) : nodes(std::move(o)) {}
  std::unique_ptr<SqliteStore> store;
  NodeRegistry nodes;
  std::unique_ptr<ConfigHub> hub;
  std::unique_ptr<AdminService> admin;
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

// Removes a stale socket file (not anything else) and creates its directory.
Status PrepareSocketPath(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Error("create " + dir.string() + ": " + ec.message(), ec.value());
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
  auto impl = std::make_unique<Impl>(std::move(nopts));
  auto store = SqliteStore::Open(opts.data_dir, std::move(*vips), opts.init);
  if (!store.ok()) return store.status();
  impl->store = std::move(*store);
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
  impl->admin = std::make_unique<AdminService>(*impl->store, *impl->hub, impl->nodes, impl->store->store_id());
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
  if (!opts.listen.empty()) {
    // host:port or [v6]:port; port 0 picks a free one (tests).
    auto colon = opts.listen.rfind(':');
    std::string port = colon == std::string::npos ? "" : opts.listen.substr(colon + 1);
    bool numeric = !port.empty() && port.size() <= 5 &&
                   port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) <= 65535;
    if (colon == 0 || !numeric || opts.listen[0] == '/' || opts.listen.rfind("unix:", 0) == 0)
      return Status::Error("--listen \"" + opts.listen + "\": expected host:port", EINVAL);
    impl->listen_host = opts.listen.substr(0, colon);
    b.AddListeningPort(opts.listen, transport::ServerCredentials(), &impl->port);
  }
  if (!opts.admin_socket.empty()) {
    auto target = transport::GrpcTarget(opts.admin_socket);
    if (!target.ok() || target->rfind("unix:", 0) != 0)
      return Status::Error("--admin-socket \"" + opts.admin_socket + "\": expected an absolute path", EINVAL);
    impl->socket_path = target->substr(5);
    WEFT_RETURN_IF_ERROR(PrepareSocketPath(impl->socket_path));
    b.AddListeningPort(*target, transport::ServerCredentials());
  }
  impl->server = b.BuildAndStart();
  if (!impl->server || (!opts.listen.empty() && impl->port == 0))
    return Status::Error("start gRPC server on " + (opts.listen.empty() ? opts.admin_socket : opts.listen) +
                             ": bind failed (address in use or not local?)",
                         EADDRINUSE);
  // Admin on the socket is unauthenticated: owner and group only.
  if (!impl->socket_path.empty() && ::chmod(impl->socket_path.c_str(), 0660) != 0)
    spdlog::warn("chmod 0660 {}: {}", impl->socket_path, std::strerror(errno));
  if (!opts.listen.empty()) spdlog::info("serving ConfigDiscovery + Admin on {}:{}", impl->listen_host, impl->port);
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
  impl_->admin.reset();
  impl_->hub.reset();
  const uint64_t rev = impl_->store->Revision();
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
