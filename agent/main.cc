// weft-agent: programs the node's socket load balancer from a config file or
// from weft-controller.
//
//   weft-agent run --node NAME --cgroup PATH (--config FILE | --controller ADDR)
//                  [--pin-root DIR] [--metrics HOST:PORT] [--max-services N]
//                  [--max-backends N] [--max-slots N] [--state-dir DIR] [--netns PATH]
//                  [--service-cidr CIDR] [--service-cidr-v6 CIDR] [--service-entry-cidr CIDR]
//                  [--service-entry-cidr-v6 CIDR] [--no-batch] [-v]
//   weft-agent --node NAME ...            (no subcommand: run)
//   weft-agent cleanup --node NAME [--pin-root DIR] [--state-dir DIR] [--netns PATH] [-v]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "weft/transport.hpp"

int main(int argc, char** argv) {
  weft::agent::RunOptions run;
  uint32_t max_services = 0, max_backends = 0, max_slots = 0;

  CLI::App app{"weft-agent: eBPF socket load balancer agent for one node", "weft-agent"};
  app.require_subcommand(1, 1);

  auto* run_cmd = app.add_subcommand("run", "Run the agent (the default when the first argument is a flag)");
  run_cmd->add_option("--node", run.node, "Node name (pins go under <pin-root>/<node>)")->required();
  run_cmd->add_option("--cgroup", run.cgroup, "cgroup v2 directory to attach the socket LB programs to")->required();
  auto* o_config =
      run_cmd->add_option("--config", run.config, "Config file (YAML: Services, WorkloadEntries); watched for changes");
  auto* o_controller = run_cmd->add_option(
      "--controller", run.controller,
      "weft-controller address (host:port, [v6]:port or unix:/path): stream the config from it");
  o_config->excludes(o_controller);
  o_controller->excludes(o_config);
  run_cmd->add_option("--pin-root", run.pin_root, "bpffs directory for the pins")->capture_default_str();
  run_cmd->add_option("--metrics", run.metrics, "HOST:PORT serving GET /metrics and /healthz (\"\" disables)")
      ->capture_default_str();
  auto* o_svc = run_cmd->add_option("--max-services", max_services, "Service map capacity (default: pinned, else 65536)")
                    ->check(CLI::PositiveNumber);
  auto* o_be = run_cmd->add_option("--max-backends", max_backends, "Backend map capacity (default: pinned, else 262144)")
                   ->check(CLI::PositiveNumber);
  auto* o_slots = run_cmd->add_option("--max-slots", max_slots, "Slot map capacity (default: pinned, else 1048576)")
                      ->check(CLI::PositiveNumber);
  run_cmd->add_option("--state-dir", run.state_dir,
                      "Directory for <node>/names.json (identity and policy names) and <node>/applied.json (the "
                      "controller version applied)")
      ->capture_default_str();
  run_cmd->add_option("--service-cidr", run.service_cidr, "IPv4 Service VIPs the controller may program")
      ->capture_default_str();
  run_cmd->add_option("--service-cidr-v6", run.service_cidr_v6, "IPv6 Service VIPs the controller may program")
      ->capture_default_str();
  run_cmd->add_option("--service-entry-cidr", run.service_entry_cidr,
                      "IPv4 ServiceEntry addresses the controller may program as VIPs")
      ->capture_default_str();
  run_cmd->add_option("--service-entry-cidr-v6", run.service_entry_cidr_v6,
                      "IPv6 ServiceEntry addresses the controller may program as VIPs")
      ->capture_default_str();
  run_cmd->add_option("--netns", run.netns,
                      "Network namespace of the pods' host-side interfaces (a netns file such as /run/netns/NAME); "
                      "default: the agent's own")
      ->check(CLI::ExistingPath);
  run_cmd->add_flag("--no-batch", run.no_batch, "Write the maps one element per syscall (no batch ops)");
  run_cmd->add_flag("-v,--verbose", run.verbose, "Debug logging (libbpf's too)");

  std::string cleanup_node, cleanup_pin_root = "/sys/fs/bpf/weft", cleanup_state_dir = "/run/weft/agent",
              cleanup_netns;
  bool cleanup_verbose = false;
  auto* cleanup_cmd = app.add_subcommand("cleanup", "Detach the node's programs and remove its pins");
  cleanup_cmd->add_option("--node", cleanup_node, "Node name")->required();
  cleanup_cmd->add_option("--pin-root", cleanup_pin_root, "bpffs directory for the pins")->capture_default_str();
  cleanup_cmd->add_option("--state-dir", cleanup_state_dir, "Directory holding <node>/names.json")
      ->capture_default_str();
  cleanup_cmd->add_option("--netns", cleanup_netns,
                          "Network namespace of the pods' host-side interfaces (skipped if it is gone)");
  cleanup_cmd->add_flag("-v,--verbose", cleanup_verbose, "Debug logging");

  // No subcommand = run: `weft-agent --node n ...` is `weft-agent run --node n ...`.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || (args[0].size() > 1 && args[0][0] == '-' && args[0] != "-h" && args[0] != "--help"))
    args.insert(args.begin(), "run");
  std::reverse(args.begin(), args.end());  // CLI11 parses a vector from the back
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (cleanup_cmd->parsed()) {
    weft::agent::SetUpLogging(cleanup_verbose);
    return weft::agent::Cleanup(cleanup_pin_root, cleanup_node, cleanup_state_dir, cleanup_netns);
  }
  if (!*o_config && !*o_controller) {
    std::cerr << "run: exactly one of --config FILE or --controller ADDR is required\n";
    return 2;
  }
  if (*o_controller) {
    if (auto t = weft::transport::GrpcTarget(run.controller); !t.ok()) {
      std::cerr << "run: --controller: " << t.status().message() << "\n";
      return 2;
    }
  }
  if (*o_svc) run.capacities.max_services = max_services;
  if (*o_be) run.capacities.max_backends = max_backends;
  if (*o_slots) run.capacities.max_slots = max_slots;
  weft::agent::SetUpLogging(run.verbose);
  return weft::agent::Run(run);
}
