// `weftctl bpf maps` and `weftctl bpf dump`: see bpf.hpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/bpf/bpf.hpp"
#include "cli/bpf/cluster.hpp"
#include "cli/bpf/decode.hpp"
#include "cli/bpf/pinned_map.hpp"
#include "cli/command.hpp"
#include "cli/ctl/admin_client.hpp"
#include "cli/ctl/format.hpp"
#include "weft/ip.hpp"
#include "weft/node/admin.hpp"

namespace weft::cli::bpf {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct Options {
  ClusterOptions cluster;
  std::string output = "table", names_from, controller, map;
  bool raw = false;
};

// What to read: the cluster's pin root and nodes, and where names come from.
struct Target {
  Cluster cluster;
  Names names;
};

void AddHintNames(const ClusterHints& h, Names* n) {
  for (const auto& s : h.services)
    for (const auto& vip : s.vips) n->vips[vip.ToString()] = s.ns + "/" + s.name;
  for (const auto& p : h.pods)
    for (const auto& ip : p.ips) n->workloads[ip.ToString()] = p.name;
}

// Services (spec.clusterIPs / clusterIP) and WorkloadEntries (spec.address)
// from a controller's Admin.Get.
Status AddControllerNames(const std::string& address, Names* n) {
  auto conn = ctl::ConnectAdmin(address);
  if (!conn.ok()) return conn.status();
  for (const char* kind : {"Service", "WorkloadEntry"}) {
    weft::v1::GetRequest req;
    req.set_kind(kind);
    weft::v1::GetResponse resp;
    auto ctx = ctl::Context(std::chrono::seconds(3));
    grpc::Status s = conn->stub->Get(ctx.get(), req, &resp);
    if (!s.ok()) return Status::Error(ctl::DescribeRpcError(s, std::string("get ") + kind, address));
    for (const auto& r : resp.resources()) {
      Json j = Json::parse(r.json(), nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("spec") || !j["spec"].is_object()) continue;
      const Json& spec = j["spec"];
      std::vector<std::string> ips;
      if (r.kind() == "Service") {
        if (spec.contains("clusterIPs") && spec["clusterIPs"].is_array())
          for (const auto& ip : spec["clusterIPs"])
            if (ip.is_string()) ips.push_back(ip);
        if (spec.contains("clusterIP") && spec["clusterIP"].is_string()) ips.push_back(spec["clusterIP"]);
        for (const auto& ip : ips)
          if (auto a = IpAddr::Parse(ip)) n->vips[a->ToString()] = r.namespace_() + "/" + r.name();
      } else if (spec.contains("address") && spec["address"].is_string()) {
        if (auto a = IpAddr::Parse(spec["address"].get<std::string>())) n->workloads[a->ToString()] = r.name();
      }
    }
  }
  return Status::Ok();
}

std::optional<Failure> Resolve(const Options& o, Target* t) {
  Names from_file;
  if (!o.names_from.empty()) {
    auto n = NamesFromYaml(o.names_from);
    if (!n.ok()) return Failure{kExitBadInput, "--names-from: " + n.status().message()};
    from_file = std::move(*n);
  }
  if (auto f = ResolveNodes(o.cluster, &t->cluster)) return f;
  if (t->cluster.hints) AddHintNames(*t->cluster.hints, &t->names);
  for (auto& [k, v] : from_file.vips) t->names.vips[k] = v;
  for (auto& [k, v] : from_file.workloads) t->names.workloads[k] = v;
  if (!o.controller.empty()) {
    // Names are a convenience: an unreachable controller is a warning, not a failure.
    if (auto st = AddControllerNames(o.controller, &t->names); !st.ok())
      std::cerr << "weftctl bpf: warning: names from the controller: " << st.message() << "\n";
  }
  for (const auto& w : t->cluster.warnings) std::cerr << "weftctl bpf: warning: " << w << "\n";
  return std::nullopt;
}

int Fail(const Failure& f) {
  std::cerr << "weftctl bpf: " << f.message << "\n";
  return f.code;
}

std::string CountStr(const std::optional<uint64_t>& n) { return n ? std::to_string(*n) : "-"; }

int RunMaps(const Options& o) {
  Target t;
  if (auto f = Resolve(o, &t)) return Fail(*f);
  Json jout = Json::array();
  int rc = kExitOk;
  bool first = true;
  for (const auto& node : t.cluster.nodes) {
    const std::string dir = t.cluster.MapsDir(node);
    auto names = ListPinnedMaps(dir);
    if (!names.ok()) return Fail({kExitEnv, names.status().message()});
    std::vector<std::vector<std::string>> rows = {{"NAME", "TYPE", "KEY", "VALUE", "ENTRIES", "CAPACITY", "ID", "BTF"}};
    Json jmaps = Json::array();
    for (const auto& name : *names) {
      auto m = OpenPinnedMap(dir, name);
      if (!m.ok()) {
        std::cerr << "weftctl bpf maps: node " << node << ": " << m.status().message() << "\n";
        if (m.status().err() == EPERM || m.status().err() == EACCES) return kExitEnv;  // the rest would fail alike
        rc = kExitEnv;
        continue;
      }
      auto n = CountKeys(*m);
      if (!n.ok()) {
        std::cerr << "weftctl bpf maps: node " << node << ": " << n.status().message() << "\n";
        rc = kExitEnv;
      }
      std::optional<uint64_t> count;
      if (n.ok() && n->has_value()) count = n->value();
      rows.push_back({name, m->type_name(), std::to_string(m->info.key_size), std::to_string(m->info.value_size),
                      CountStr(count), std::to_string(m->info.max_entries), std::to_string(m->info.id),
                      m->has_btf() ? "yes" : "no"});
      jmaps.push_back({{"name", name},
                       {"path", m->path},
                       {"type", m->type_name()},
                       {"key_size", m->info.key_size},
                       {"value_size", m->info.value_size},
                       {"entries", count ? Json(*count) : Json()},
                       {"max_entries", m->info.max_entries},
                       {"percpu", m->percpu()},
                       {"id", m->info.id},
                       {"btf", m->has_btf()},
                       {"btf_id", m->info.btf_id}});
    }
    if (o.output == "json") {
      Json jn = {{"node", node}, {"pin_root", t.cluster.pin_root}, {"maps", jmaps}};
      // The node's agent, as it answered on its admin socket (null: none running).
      if (auto a = t.cluster.agents.find(node); a != t.cluster.agents.end())
        jn["agent"] = Json::parse(node::RenderAgentInfo(a->second));
      else
        jn["agent"] = nullptr;
      jout.push_back(std::move(jn));
    } else {
      std::cout << (first ? "" : "\n") << "node " << node << " (" << dir << ", " << t.cluster.source << ")\n";
      if (auto a = t.cluster.agents.find(node); a != t.cluster.agents.end()) {
        const node::AgentInfo& i = a->second;
        std::cout << "agent: pid " << i.pid << ", weft-agent " << i.agent_version << ", ABI " << i.abi_version << ", "
                  << i.mode << " " << i.source
                  << (i.mode == "controller" ? ", applied version " + std::to_string(i.applied_version) : "")
                  << (i.healthy ? ", healthy" : ", not healthy") << "\n";
      }
      std::cout << ctl::RenderTable(rows);
    }
    first = false;
  }
  if (o.output == "json") std::cout << jout.dump(2) << "\n";
  return rc;
}

int RunDump(const Options& o) {
  Target t;
  if (auto f = Resolve(o, &t)) return Fail(*f);
  Json jout = Json::array();
  bool first = true;
  for (const auto& node : t.cluster.nodes) {
    const std::string dir = t.cluster.MapsDir(node);
    std::error_code ec;
    if (!fs::exists(dir + "/" + o.map, ec)) {
      auto names = ListPinnedMaps(dir);
      std::string have;
      if (names.ok())
        for (const auto& n : *names) have += "\n  " + n;
      return Fail({kExitBadInput, "map " + o.map + ": not pinned for node " + node + " (no " + dir + "/" + o.map +
                                      "); maps that exist:" + (have.empty() ? " none" : have)});
    }
    auto m = OpenPinnedMap(dir, o.map);
    if (!m.ok()) return Fail({kExitEnv, "node " + node + ": " + m.status().message()});
    auto d = DecodeMap(*m, dir, t.names, {.raw = o.raw});
    if (!d.ok()) return Fail({kExitEnv, "node " + node + ": " + d.status().message()});
    if (o.output == "json") {
      jout.push_back({{"node", node},
                      {"map", o.map},
                      {"path", m->path},
                      {"type", m->type_name()},
                      {"entries", d->json},
                      {"note", d->note.empty() ? Json() : Json(d->note)}});
      continue;
    }
    std::cout << (first ? "" : "\n") << "node " << node << ": " << m->path << " (" << m->type_name() << ", "
              << d->json.size() << " rows)\n";
    if (d->rows.size() > 1 || d->note.empty()) std::cout << ctl::RenderTable(d->rows);
    if (!d->note.empty()) std::cout << "# " << d->note << "\n";
    first = false;
  }
  if (o.output == "json") std::cout << jout.dump(2) << "\n";
  return kExitOk;
}

void CommonOptions(CLI::App* c, Options* o) {
  c->add_option("--node", o->cluster.node, "node (default: every node: the lab's, or every <pin-root>/<node>/maps)");
  c->add_option("--pin-root", o->cluster.pin_root,
                "bpffs pin root (default: the running lab's if exactly one runs, else the one the running agents "
                "report, else /sys/fs/bpf/weft)");
  c->add_option("--lab", o->cluster.lab, "read the pin root, nodes and names from this lab's state");
  c->add_option("--state-dir", o->cluster.state_dir,
                "the agents' state dir, where their admin sockets are (<node>/agent.sock; default: the lab "
                "agents', else /run/weft/agent)");
  c->add_option("-o,--output", o->output, "table or json")->check(CLI::IsMember({"table", "json"}));
}

}  // namespace

void Register(CLI::App& root, int* exit_code) {
  CLI::App* g = root.add_subcommand("bpf", "inspect a node's pinned BPF maps (needs root)");
  g->require_subcommand(1);

  auto mo = std::make_shared<Options>();
  CLI::App* c_maps = g->add_subcommand("maps", "every pinned map of the node: type, sizes, entries, capacity, id, BTF");
  CommonOptions(c_maps, mo.get());
  c_maps->callback([mo, exit_code] { *exit_code = RunMaps(*mo); });

  auto dopt = std::make_shared<Options>();
  std::string known;
  for (const auto& n : KnownMaps()) known += " " + n;
  CLI::App* c_dump = g->add_subcommand("dump", "one map, decoded through weft/bpf_abi.h; decoded maps:" + known);
  c_dump->add_option("MAP", dopt->map, "map name (the pin file name)")->required();
  CommonOptions(c_dump, dopt.get());
  c_dump->add_option("--names-from", dopt->names_from,
                     "YAML with Services and WorkloadEntries (e.g. the agent's --config) to name VIPs and backends");
  c_dump->add_option("--controller", dopt->controller,
                     "weft-controller Admin address (host:port or unix:/path) to name VIPs and backends (Get)");
  c_dump->add_flag("--raw", dopt->raw, "weft_slots: one row per slot instead of per service generation");
  c_dump->callback([dopt, exit_code] { *exit_code = RunDump(*dopt); });
}

}  // namespace weft::cli::bpf
