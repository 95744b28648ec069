// weft-controller: stores the mesh config and pushes compiled per-node config
// to the agents.
//
//   weft-controller --data-dir DIR [--init] [--listen 127.0.0.1:15012]
//                   [--admin-socket /run/weft/controller/admin.sock]
//                   [--service-cidr 10.96.0.0/16] [--service-cidr-v6 fd00:96::/112]
//                   [--service-entry-cidr 240.240.0.0/16] [--service-entry-cidr-v6 2001:2::/48]
//                   [--max-streams 10000] [--hello-timeout-ms 5000]
//                   [--trust-domain cluster.local] [--ca-cert FILE --ca-key FILE]
//                   [--server-san NAME|IP]... [--node-cert-ttl 24h] [-v]
//
// The TCP listener is mutual TLS (controller/auth.hpp: who may call what);
// the unix socket is root-only. Files it creates are its user's only (umask 077).
//
// SIGTERM/SIGINT: graceful shutdown (streams finished with UNAVAILABLE, calls
// in flight given 2 s, the store closed, the socket file removed).
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "controller/server.hpp"
#include "weft/duration.hpp"
#include "weft/transport.hpp"

namespace {

void SetUpLogging(bool verbose) {
  auto logger = std::make_shared<spdlog::logger>("weft-controller", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace

int main(int argc, char** argv) {
  weft::transport::RestrictToTls13();  // before any thread
  weft::controller::ServerOptions opts;
  bool verbose = false;
  CLI::App app{"weft-controller: stores the mesh config and pushes per-node config to weft-agents",
               "weft-controller"};
  app.add_option("--data-dir", opts.data_dir, "Directory of the store (weft.db, SQLite)")->required();
  app.add_flag("--init", opts.init,
               "Create a new, empty store in --data-dir (once, for a new cluster; refused if weft.db exists). "
               "Without it a missing, empty or unreadable store refuses to start");
  app.add_option("--listen", opts.listen,
                 "HOST:PORT for ConfigDiscovery, NodeIdentity and Admin over mutual TLS (\"\" disables)")
      ->capture_default_str();
  app.add_option("--admin-socket", opts.admin_socket,
                 "Unix socket for Admin (weftctl), mode 0600 in a directory of its own (\"\" disables)")
      ->capture_default_str();
  app.add_option("--service-cidr", opts.service_cidr, "IPv4 range for Service VIPs")->capture_default_str();
  app.add_option("--service-cidr-v6", opts.service_cidr_v6, "IPv6 range for dual-stack and IPv6 Service VIPs")
      ->capture_default_str();
  app.add_option("--service-entry-cidr", opts.service_entry_cidr,
                 "IPv4 range that ServiceEntry addresses (VIPs) must lie in")
      ->capture_default_str();
  app.add_option("--service-entry-cidr-v6", opts.service_entry_cidr_v6,
                 "IPv6 range that ServiceEntry addresses (VIPs) must lie in")
      ->capture_default_str();
  size_t max_streams = opts.max_streams;
  int64_t hello_ms = opts.hello_timeout.count();
  app.add_option("--max-streams", max_streams, "Concurrent ConfigDiscovery streams (more are refused)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--hello-timeout-ms", hello_ms, "A stream that sends no hello within this is closed")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  app.add_option("--trust-domain", opts.ca.trust_domain,
                 "SPIFFE trust domain of the controller, node and admin identities")
      ->capture_default_str();
  auto* o_cert = app.add_option("--ca-cert", opts.ca.ca_cert_file,
                                "PEM of an organisation's CA (then its issuers, if any) to issue from, instead of the "
                                "CA generated and kept in weft.db");
  auto* o_key = app.add_option("--ca-key", opts.ca.ca_key_file, "PEM of --ca-cert's private key (mode 0600)");
  o_cert->needs(o_key);
  o_key->needs(o_cert);
  app.add_option("--server-san", opts.server_sans,
                 "Extra SAN of the serving certificate (DNS name or IP), repeatable; the --listen host is one already");
  std::string node_ttl = "24h";
  app.add_option("--node-cert-ttl", node_ttl, "Lifetime of node certificates (agents renew at half of it)")
      ->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Debug logging");
  CLI11_PARSE(app, argc, argv);
  opts.max_streams = max_streams;
  opts.hello_timeout = std::chrono::milliseconds(hello_ms);
  SetUpLogging(verbose);
  auto ttl = weft::ParseDuration(node_ttl);
  if (!ttl.ok()) {
    spdlog::critical("--node-cert-ttl: {}", ttl.status().message());
    return 2;
  }
  opts.ca.node_cert_ttl = *ttl;
  ::umask(077);  // weft.db (the CA key), the TLS files, the socket: ours only

  // Block the stop signals in every thread (gRPC's too); main waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = weft::controller::ControllerServer::Start(opts);
  if (!server.ok()) {
    spdlog::critical("start: {}", server.status().message());
    return 1;
  }
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return 0;
}
