// weft-controller as a library: the store, the compiler hub, the Admin and
// ConfigDiscovery services and the gRPC server, wired together. main.cc and
// the in-process tests use this.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "controller/ca.hpp"
#include "controller/node_status.hpp"
#include "controller/store.hpp"
#include "weft/status.hpp"

namespace weft::controller {

struct ServerOptions {
  std::string data_dir;  // 0700; weft.db 0600 (it holds the CA key)
  std::string listen = "127.0.0.1:15012";  // mutual TLS; "" = no TCP listener; port 0 picks one
  // Root-only: the socket is 0600 in a directory of its own (0700). "" = no unix socket.
  std::string admin_socket = "/run/weft/controller/admin.sock";
  std::string service_cidr = "10.96.0.0/16";
  std::string service_cidr_v6 = "fd00:96::/112";
  // ServiceEntry addresses (compiled as VIPs) must lie here (Istio's
  // auto-allocation ranges); agents accept VIPs in these and the service CIDRs.
  std::string service_entry_cidr = "240.240.0.0/16";
  std::string service_entry_cidr_v6 = "2001:2::/48";
  // --init: create a new, empty store in data_dir (refused if one exists).
  // Without it, a missing, empty or unreadable store refuses to start.
  bool init = false;
  // Bounds on what agents (or anyone who can connect) can make the controller hold.
  std::chrono::milliseconds hello_timeout{5000};         // a stream says hello within this, or is closed
  size_t max_streams = 10000;                            // concurrent ConfigDiscovery streams
  std::chrono::milliseconds forget_disconnected{3600 * 1000};  // status forgets a disconnected node after this
  size_t max_disconnected_nodes = 4096;                  // and keeps at most this many (the oldest go first)
  // The CA (trust domain, --ca-cert/--ca-key, lifetimes): controller/ca.hpp.
  CaOptions ca;
  // Extra SANs of the serving certificate (IP literals or DNS names), besides
  // the listen host.
  std::vector<std::string> server_sans;
  // How often the serving credentials (<data-dir>/tls) are re-read.
  std::chrono::seconds tls_refresh{60};
  // The wall clock of everything that expires (certificates, join tokens, the
  // node registry): weft/clock.hpp; nullptr: the system clock. Overrides
  // ca.clock. Must outlive the server.
  const Clock* clock = nullptr;
};

class ControllerServer {
 public:
  // Opens the store, compiles it (Compiler::Reset), binds and starts serving.
  static Result<std::unique_ptr<ControllerServer>> Start(const ServerOptions& opts);
  ~ControllerServer();  // Shutdown()

  int tcp_port() const;           // the bound TCP port (0 without --listen)
  std::string tcp_target() const;  // "127.0.0.1:<port>" style, for Dial
  Store& store();
  const std::string& store_id() const;  // the store's identity (agents compare it)
  NodeRegistry& nodes();
  ClusterCa& ca();
  size_t streams() const;  // connected ConfigDiscovery streams
  // Graceful: finishes every stream (UNAVAILABLE), waits up to 2 s for calls
  // in flight, closes the store. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() completed.
  void Wait();

 private:
  struct Impl;
  explicit ControllerServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::controller
