// weft-controller: stores the mesh config and pushes compiled per-node config
// to the agents.
//
//   weft-controller --data-dir DIR [--init] [--listen 127.0.0.1:15012]
//                   [--admin-socket /run/weft/controller.sock]
//                   [--service-cidr 10.96.0.0/16] [--service-cidr-v6 fd00:96::/112]
//                   [--service-entry-cidr 240.240.0.0/16] [--service-entry-cidr-v6 2001:2::/48]
//                   [--max-streams 10000] [--hello-timeout-ms 5000] [-v]
//
// SIGTERM/SIGINT: graceful shutdown (streams finished with UNAVAILABLE, calls
// in flight given 2 s, the store closed, the socket file removed).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "controller/server.hpp"

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
  weft::controller::ServerOptions opts;
  bool verbose = false;
  CLI::App app{"weft-controller: stores the mesh config and pushes per-node config to weft-agents",
               "weft-controller"};
  app.add_option("--data-dir", opts.data_dir, "Directory of the store (weft.db, SQLite)")->required();
  app.add_flag("--init", opts.init,
               "Create a new, empty store in --data-dir (once, for a new cluster; refused if weft.db exists). "
               "Without it a missing, empty or unreadable store refuses to start");
  app.add_option("--listen", opts.listen, "HOST:PORT for ConfigDiscovery and Admin (\"\" disables)")
      ->capture_default_str();
  app.add_option("--admin-socket", opts.admin_socket, "Unix socket for Admin (weftctl) (\"\" disables)")
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
  app.add_flag("-v,--verbose", verbose, "Debug logging");
  CLI11_PARSE(app, argc, argv);
  opts.max_streams = max_streams;
  opts.hello_timeout = std::chrono::milliseconds(hello_ms);
  SetUpLogging(verbose);

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
