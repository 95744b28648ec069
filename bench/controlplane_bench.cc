// weft-cpbench: the control-plane benchmark (bench/run_controlplane.sh drives it).
//
//   weft-cpbench compile --services S --endpoints E [--reset-reps R] [--update-reps U]
//       in-process Compiler: Reset on every resource, Update with one endpoint
//   weft-cpbench apply   --controller ADDR --services S --endpoints E
//       generates the Services/WorkloadEntries and applies them over Admin
//   weft-cpbench fanout  --controller ADDR --services S --endpoints E --agents N --reps R
//       N simulated agents (hello, snapshot, ACK); one endpoint change per rep;
//       per-agent time from the Apply call to the delta's ACK written
//   weft-cpbench kernel  --controller ADDR --services S --endpoints E --node NODE --maps DIR --reps R
//       one endpoint change per rep, then polls the real agent's pinned maps
//       until the new backend address is visible
//   weft-cpbench ca      --out DIR
//       a CA (DIR/ca.pem, DIR/ca.key 0600) for weft-controller --ca-cert/--ca-key
//
// With a TCP --controller, apply/fanout/kernel need --ca-cert/--ca-key (the
// controller's CA): the bench issues itself an admin certificate and each
// simulated agent a node certificate in process, and talks mutual TLS, one
// connection per simulated agent (a connection is one node's). With a unix
// socket (root-only) no certificates are involved.
//
// Every subcommand prints one JSON line on stdout (progress goes to stderr).
// The config: S services svc-<i> in namespaces cpb-<i/100>, clusterIP
// 10.96.0.0/16 + 1 + i, port 80/TCP, selector app=svc-<i>; E/S WorkloadEntries
// we-<i>-<k> per service, addresses 10.128.0.0 + e. Nothing is sent to any of
// these addresses: only the control plane and the maps are measured.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "config/resources.hpp"
#include "controller/compiler.hpp"
#include "weft/bpf_abi.h"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/pki.hpp"
#include "weft/transport.hpp"
#include "weft/v1/admin.grpc.pb.h"
#include "weft/v1/config.grpc.pb.h"

namespace {

namespace v1 = weft::v1;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// Nearest-rank percentile of a copy.
double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  if (rank < 1) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}
json Stats(const std::vector<double>& v) {
  return {{"n", v.size()},
          {"p50", Pct(v, 50)},
          {"p90", Pct(v, 90)},
          {"p99", Pct(v, 99)},
          {"max", v.empty() ? 0.0 : *std::max_element(v.begin(), v.end())},
          {"min", v.empty() ? 0.0 : *std::min_element(v.begin(), v.end())}};
}

struct Scale {
  int services = 10000;
  int endpoints = 100000;
  int per() const { return std::max(1, endpoints / services); }
};

std::string Ip4(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}
uint32_t VipOf(int svc) { return (10u << 24 | 96u << 16) + 1 + svc; }
uint32_t EndpointAddr(int e) { return (10u << 24 | 128u << 16) + e; }
std::string Ns(int svc) { return "cpb-" + std::to_string(svc / 100); }

std::string ServiceDoc(int i) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-" + std::to_string(i) + "\n  namespace: " + Ns(i) +
         "\nspec:\n  clusterIP: " + Ip4(VipOf(i)) + "\n  selector:\n    app: svc-" + std::to_string(i) +
         "\n  ports:\n  - name: http\n    port: 80\n";
}
std::string EndpointDoc(int svc, int k, uint32_t addr, int weight) {
  return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: we-" + std::to_string(svc) + "-" +
         std::to_string(k) + "\n  namespace: " + Ns(svc) + "\nspec:\n  address: " + Ip4(addr) +
         "\n  labels:\n    app: svc-" + std::to_string(svc) + "\n  weight: " + std::to_string(weight) + "\n";
}
// All documents, services first.
std::vector<std::string> Documents(const Scale& s) {
  std::vector<std::string> docs;
  docs.reserve(s.services + s.endpoints);
  for (int i = 0; i < s.services; ++i) docs.push_back(ServiceDoc(i));
  for (int i = 0; i < s.services; ++i)
    for (int k = 0; k < s.per(); ++k) docs.push_back(EndpointDoc(i, k, EndpointAddr(i * s.per() + k), 1));
  return docs;
}

// The controller's CA (--ca-cert/--ca-key): client certificates issued in process.
struct BenchPki {
  std::optional<weft::pki::CertificateAuthority> ca;
  std::string trust_domain = "cluster.local";
  // TLS credentials presenting a fresh certificate for `spiffe_id` (nullptr without a CA).
  std::shared_ptr<grpc::ChannelCredentials> Creds(const std::string& spiffe_id) const {
    if (!ca) return nullptr;
    auto key = weft::pki::PrivateKey::Generate();
    weft::pki::IssueOptions o;
    o.uri_sans = {spiffe_id};
    o.lifetime = std::chrono::hours(24);
    auto cert = key.ok() ? ca->Issue(*key, o) : weft::Result<weft::pki::Certificate>(key.status());
    if (!cert.ok()) {
      std::fprintf(stderr, "issue %s: %s\n", spiffe_id.c_str(), cert.status().message().c_str());
      std::exit(1);
    }
    weft::transport::ClientTls tls;
    std::vector<weft::pki::Certificate> chain{*cert};
    for (const auto& c : ca->IssuerChain()) chain.push_back(c);
    tls.certs = weft::transport::StaticCertificates(
        weft::credentials::Identity{*key, chain, weft::pki::TrustBundle(ca->Roots())});
    tls.server_spiffe_id = weft::pki::ControllerId(trust_domain);
    tls.roots = [roots = weft::pki::TrustBundle(ca->Roots())]() -> weft::Result<weft::pki::TrustBundle> { return roots; };
    return weft::transport::TlsChannelCredentials(tls);
  }
};
BenchPki g_pki;

std::unique_ptr<v1::Admin::Stub> AdminStub(const std::string& addr) {
  auto ch = weft::transport::Dial(
      addr, weft::transport::IsUnixAddress(addr) ? nullptr : g_pki.Creds(weft::pki::AdminId(g_pki.trust_domain, "cpbench")));
  if (!ch.ok()) {
    std::fprintf(stderr, "dial %s: %s\n", addr.c_str(), ch.status().message().c_str());
    std::exit(1);
  }
  return v1::Admin::NewStub(*ch);
}

grpc::Status Apply(v1::Admin::Stub& admin, const std::string& yaml, v1::ApplyResponse* resp) {
  v1::ApplyRequest req;
  auto* f = req.add_files();
  f->set_name("cpbench.yaml");
  f->set_content(yaml);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 300s);
  return admin.Apply(&ctx, req, resp);
}

// ---- compile ----
int CmdCompile(const Scale& s, int reset_reps, int update_reps) {
  auto t0 = Clock::now();
  std::string all;
  for (auto& d : Documents(s)) all += "---\n" + d;
  auto parsed = weft::config::ParseResources(all, "cpbench.yaml");
  if (!parsed.ok()) {
    std::fprintf(stderr, "parse: %s\n", parsed.status().message().c_str());
    return 1;
  }
  auto t1 = Clock::now();
  std::fprintf(stderr, "compile: parsed %zu resources in %.0f ms\n", parsed->size(), Ms(t0, t1));
  std::vector<double> reset_ms, update_ms, snap_ms, delta_ms;
  size_t snap_bytes = 0, delta_bytes = 0;
  weft::controller::Compiler compiler;
  for (int r = 0; r < reset_reps; ++r) {
    weft::controller::Compiler c;
    auto a = Clock::now();
    c.Reset(*parsed);
    reset_ms.push_back(Ms(a, Clock::now()));
    if (r == reset_reps - 1) compiler = c;
  }
  for (int r = 0; r < 3; ++r) {
    auto a = Clock::now();
    auto snap = compiler.Snapshot("node-x");
    snap_ms.push_back(Ms(a, Clock::now()));
    snap_bytes = snap.ByteSizeLong();
  }
  // What ConfigHub does per version (once) and per hello (per node).
  std::vector<double> shared_ms, node_ms;
  size_t shared_bytes = 0;
  for (int r = 0; r < 3; ++r) {
    auto a = Clock::now();
    auto shared = compiler.Snapshot("");
    shared.clear_local_workloads();
    shared_bytes = shared.SerializeAsString().size();
    shared_ms.push_back(Ms(a, Clock::now()));
    auto b = Clock::now();
    (void)compiler.NodeSnapshot("node-x").SerializeAsString();
    node_ms.push_back(Ms(b, Clock::now()));
  }
  for (int r = 0; r < update_reps; ++r) {
    int svc = (r * 97) % s.services;
    auto one = weft::config::ParseResources(EndpointDoc(svc, 0, EndpointAddr(s.endpoints + r + 1), 1 + r % 2), "one");
    if (!one.ok()) return 1;
    auto a = Clock::now();
    auto cs = compiler.Update(*one, {});
    update_ms.push_back(Ms(a, Clock::now()));
    auto b = Clock::now();
    auto d = compiler.Delta("node-x", cs);
    delta_ms.push_back(Ms(b, Clock::now()));
    delta_bytes = d.ByteSizeLong();
  }
  json out = {{"phase", "compile"},
              {"services", s.services},
              {"endpoints", s.endpoints},
              {"parse_ms", Ms(t0, t1)},
              {"reset_ms", Stats(reset_ms)},
              {"update_one_endpoint_ms", Stats(update_ms)},
              {"snapshot_ms", Stats(snap_ms)},
              {"snapshot_bytes", snap_bytes},
              {"shared_snapshot_serialized_ms", Stats(shared_ms)},
              {"shared_snapshot_bytes", shared_bytes},
              {"node_snapshot_serialized_ms", Stats(node_ms)},
              {"delta_ms", Stats(delta_ms)},
              {"delta_bytes", delta_bytes}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- apply ----
int CmdApply(const std::string& addr, const Scale& s, size_t chunk_bytes) {
  auto admin = AdminStub(addr);
  auto docs = Documents(s);
  std::vector<double> chunk_ms;
  auto t0 = Clock::now();
  uint64_t revision = 0;
  std::string buf;
  size_t n = 0;
  auto flush = [&]() -> bool {
    if (buf.empty()) return true;
    v1::ApplyResponse resp;
    auto a = Clock::now();
    auto st = Apply(*admin, buf, &resp);
    chunk_ms.push_back(Ms(a, Clock::now()));
    if (!st.ok()) {
      std::fprintf(stderr, "apply: %s\n", st.error_message().c_str());
      return false;
    }
    revision = resp.revision();
    std::fprintf(stderr, "apply: %zu/%zu documents, revision %llu, %.0f ms\n", n, docs.size(),
                 static_cast<unsigned long long>(revision), chunk_ms.back());
    buf.clear();
    return true;
  };
  for (auto& d : docs) {
    buf += "---\n" + d;
    ++n;
    if (buf.size() >= chunk_bytes && !flush()) return 1;
  }
  if (!flush()) return 1;
  json out = {{"phase", "apply"},
              {"services", s.services},
              {"endpoints", s.endpoints},
              {"documents", docs.size()},
              {"requests", chunk_ms.size()},
              {"request_ms", Stats(chunk_ms)},
              {"total_ms", Ms(t0, Clock::now())},
              {"revision", revision}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- fan-out ----
// A callback-API simulated agent: hello, ACK every push; records when the ACK
// of a target version has been written.
class SimAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  SimAgent(v1::ConfigDiscovery::Stub& stub, std::string node) : node_(std::move(node)) {
    stub.async()->Stream(&ctx_, this);
    hello_.mutable_hello()->set_node(node_);
    hello_.mutable_hello()->set_agent_version("cpbench");
    writing_ = true;
    StartWrite(&hello_);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      std::lock_guard lock(mu_);
      pending_.mutable_ack()->set_version(in_.version());
      pending_.mutable_ack()->set_nonce(in_.nonce());
      has_pending_ = true;
      MaybeWriteLocked();
    }
    // Free the parsed snapshot (megabytes per agent at 100,000 endpoints).
    v1::ControllerMessage().Swap(&in_);
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) return;
    if (out_.has_ack()) {
      acked_ = out_.ack().version();
      if (target_ && acked_ >= target_ && !hit_) {
        hit_ = true;
        hit_at_ = Clock::now();
      }
    }
    MaybeWriteLocked();
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  uint64_t acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  void Arm(uint64_t target) {
    std::lock_guard lock(mu_);
    target_ = target;
    hit_ = acked_ >= target;
    hit_at_ = Clock::now();
  }
  bool Hit(Clock::time_point* at) {
    std::lock_guard lock(mu_);
    *at = hit_at_;
    return hit_;
  }
  void Cancel() { ctx_.TryCancel(); }
  bool WaitDone(std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return done_; });
  }

 private:
  void MaybeWriteLocked() {
    if (writing_ || !has_pending_) return;
    out_ = pending_;
    has_pending_ = false;
    writing_ = true;
    StartWrite(&out_);
  }
  std::string node_;
  grpc::ClientContext ctx_;
  v1::AgentMessage hello_, out_, pending_;
  v1::ControllerMessage in_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false, has_pending_ = false, done_ = false, hit_ = false;
  uint64_t acked_ = 0, target_ = 0;
  Clock::time_point hit_at_;
};

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit, std::chrono::microseconds step = 2ms) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

uint64_t Revision(v1::Admin::Stub& admin, v1::StatusResponse* out = nullptr) {
  v1::StatusRequest req;
  v1::StatusResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  if (!admin.Status(&ctx, req, &resp).ok()) return 0;
  if (out) *out = resp;
  return resp.revision();
}

int CmdFanout(const std::string& addr, const Scale& s, int agents, int reps, int channels, int wave,
              int wave_timeout_s) {
  auto admin = AdminStub(addr);
  auto target = weft::transport::GrpcTarget(addr);
  if (!target.ok()) return 1;
  uint64_t base = Revision(*admin);
  // TCP: one connection per agent, each with its node's certificate (issued
  // here, before the clock starts). Unix socket: `channels` shared connections.
  const bool tcp = !weft::transport::IsUnixAddress(addr);
  if (tcp) channels = agents;
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  std::vector<std::unique_ptr<v1::ConfigDiscovery::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    args.SetInt("weft.cpbench.channel", c);
    args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
    auto creds = tcp ? g_pki.Creds(weft::pki::NodeId(g_pki.trust_domain, "cpb-sim-" + std::to_string(c)))
                     : grpc::experimental::LocalCredentials(UDS);
    if (!creds) {
      std::fprintf(stderr, "fanout: a TCP controller needs --ca-cert/--ca-key\n");
      return 2;
    }
    chans.push_back(grpc::CreateCustomChannel(*target, creds, args));
    stubs.push_back(v1::ConfigDiscovery::NewStub(chans.back()));
  }
  std::vector<std::unique_ptr<SimAgent>> sims;
  json out = {{"phase", "fanout"}, {"agents", agents}, {"channels", channels}, {"services", s.services},
              {"endpoints", s.endpoints}};
  int rc = 0;
  // Connect in waves (bounded snapshots in flight), each wave until all ACKed.
  auto t0 = Clock::now();
  int stalled = 0;
  for (int i = 0; i < agents && !stalled; i += wave) {
    int end = std::min(agents, i + wave);
    for (int j = i; j < end; ++j)
      sims.push_back(std::make_unique<SimAgent>(*stubs[j % channels], "cpb-sim-" + std::to_string(j)));
    if (!WaitFor([&] {
          for (int j = i; j < end; ++j)
            if (sims[j]->acked() < base) return false;
          return true;
        }, std::chrono::seconds(wave_timeout_s), 5ms)) {
      for (int j = i; j < end; ++j) stalled += sims[j]->acked() < base;
      std::fprintf(stderr, "fanout: %d of agents %d..%d did not ACK their snapshot within %d s: "
                   "no more agents connected; measuring the ones that did\n", stalled, i, end - 1, wave_timeout_s);
    }
    if (i / wave % 4 == 3) std::fprintf(stderr, "fanout: %d agents connected, %.0f ms\n", end, Ms(t0, Clock::now()));
  }
  // Measure only the agents that have their snapshot.
  std::vector<std::unique_ptr<SimAgent>> stuck;
  for (auto& sa : sims)
    if (sa->acked() < base) stuck.push_back(std::move(sa));
  sims.erase(std::remove(sims.begin(), sims.end(), nullptr), sims.end());
  out["agents_synced"] = sims.size();
  out["agents_stalled"] = stuck.size();
  if (!stuck.empty()) rc = 1;
  out["connect_all_snapshots_acked_ms"] = Ms(t0, Clock::now());
  std::fprintf(stderr, "fanout: %zu of %d agents connected and ACKed the snapshot in %.0f ms\n", sims.size(), agents,
               Ms(t0, Clock::now()));

  json runs = json::array();
  std::vector<double> all_ms, apply_ms, last_ms;
  for (int r = 0; r < reps && !sims.empty(); ++r) {
    int svc = (r * 131 + 7) % s.services;
    std::string doc = EndpointDoc(svc, 1 % s.per(), EndpointAddr(svc * s.per() + 1 % s.per()), 2 + r);
    uint64_t expect = Revision(*admin) + 1;
    for (auto& a : sims) a->Arm(expect);
    v1::ApplyResponse resp;
    auto a0 = Clock::now();
    auto st = Apply(*admin, doc, &resp);
    auto a1 = Clock::now();
    if (!st.ok() || resp.revision() != expect) {
      std::fprintf(stderr, "fanout: apply failed or unexpected revision (%s, %llu != %llu)\n",
                   st.error_message().c_str(), static_cast<unsigned long long>(resp.revision()),
                   static_cast<unsigned long long>(expect));
      rc = 1;
      break;
    }
    bool ok = WaitFor([&] {
      Clock::time_point t;
      for (auto& sa : sims)
        if (!sa->Hit(&t)) return false;
      return true;
    }, 30s, 1ms);
    std::vector<double> per;
    int missing = 0;
    for (auto& sa : sims) {
      Clock::time_point t;
      if (sa->Hit(&t)) per.push_back(Ms(a0, t));
      else ++missing;
    }
    double mx = per.empty() ? 0 : *std::max_element(per.begin(), per.end());
    runs.push_back({{"rep", r}, {"apply_rpc_ms", Ms(a0, a1)}, {"ack_ms", Stats(per)}, {"missing", missing}});
    std::fprintf(stderr, "fanout rep %d: apply RPC %.1f ms, ACK p50 %.1f p99 %.1f max %.1f ms, missing %d\n", r,
                 Ms(a0, a1), Pct(per, 50), Pct(per, 99), mx, missing);
    all_ms.insert(all_ms.end(), per.begin(), per.end());
    apply_ms.push_back(Ms(a0, a1));
    last_ms.push_back(mx);
    if (!ok) rc = 1;
    std::this_thread::sleep_for(200ms);
  }
  out["reps"] = runs;
  out["ack_ms_all_reps"] = Stats(all_ms);
  out["apply_rpc_ms"] = Stats(apply_ms);
  out["all_converged_ms"] = Stats(last_ms);  // per rep: the last agent's ACK
  out["ok"] = rc == 0;
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  for (auto& sa : stuck) sims.push_back(std::move(sa));
  for (auto& sa : sims) sa->Cancel();
  for (auto& sa : sims) sa->WaitDone(10s);
  return rc;
}

// ---- kernel ----
struct Maps {
  int services = -1, slots = -1, backends = -1;
  ~Maps() {
    for (int fd : {services, slots, backends})
      if (fd >= 0) close(fd);
  }
};

// Backend addresses (IPv4, host order) the service's current slots point at; false if not found.
bool Backends(const Maps& m, int svc, std::set<uint32_t>* out) {
  weft_svc_key k{};
  uint32_t vip = htonl(VipOf(svc));
  k.addr[10] = k.addr[11] = 0xff;
  std::memcpy(&k.addr[12], &vip, 4);
  k.port = htons(80);
  k.proto = IPPROTO_TCP;
  weft_svc_val v{};
  if (bpf_map_lookup_elem(m.services, &k, &v) != 0) return false;
  std::set<uint32_t> ids;
  for (uint16_t i = 0; i < v.slot_count; ++i) {
    weft_slot_key sk{v.svc_id, v.gen, i};
    uint32_t id = 0;
    if (bpf_map_lookup_elem(m.slots, &sk, &id) == 0) ids.insert(id);
  }
  out->clear();
  for (uint32_t id : ids) {
    weft_backend b{};
    if (bpf_map_lookup_elem(m.backends, &id, &b) != 0) continue;
    uint32_t a;
    std::memcpy(&a, &b.addr[12], 4);
    out->insert(ntohl(a));
  }
  return true;
}

int CmdKernel(const std::string& addr, const Scale& s, const std::string& node, const std::string& maps_dir,
              int reps, int sync_timeout_s) {
  auto admin = AdminStub(addr);
  json out = {{"phase", "kernel"}, {"services", s.services}, {"endpoints", s.endpoints}, {"node", node}};
  // Wait until the agent has ACKed the current revision (its maps programmed).
  auto t0 = Clock::now();
  uint64_t rev = Revision(*admin);
  bool synced = WaitFor([&] {
    v1::StatusResponse st;
    Revision(*admin, &st);
    for (const auto& n : st.nodes())
      if (n.node() == node && n.last_acked_version() >= rev) return true;
    return false;
  }, std::chrono::seconds(sync_timeout_s), 20ms);
  out["initial_sync_wait_ms"] = Ms(t0, Clock::now());
  if (!synced) {
    std::fprintf(stderr, "kernel: agent %s did not ACK revision %llu\n", node.c_str(),
                 static_cast<unsigned long long>(rev));
    out["ok"] = false;
    std::printf("%s\n", out.dump().c_str());
    return 1;
  }
  Maps m;
  m.services = bpf_obj_get((maps_dir + "/" WEFT_MAP_SERVICES).c_str());
  m.slots = bpf_obj_get((maps_dir + "/" WEFT_MAP_SLOTS).c_str());
  m.backends = bpf_obj_get((maps_dir + "/" WEFT_MAP_BACKENDS).c_str());
  if (m.services < 0 || m.slots < 0 || m.backends < 0) {
    std::fprintf(stderr, "kernel: cannot open the pinned maps in %s: %s\n", maps_dir.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<double> visible_ms, apply_ms;
  int timeouts = 0;
  long polls = 0;
  for (int r = 0; r < reps; ++r) {
    int svc = (r * 97 + 13) % s.services;
    uint32_t fresh = (10u << 24 | 144u << 16) + r + 1;  // a new address, unique in the run
    std::string doc = EndpointDoc(svc, 0, fresh, 1);
    std::set<uint32_t> be;
    if (!Backends(m, svc, &be)) {
      std::fprintf(stderr, "kernel: service %d not in %s\n", svc, WEFT_MAP_SERVICES);
      return 1;
    }
    // The Apply RPC runs on its own thread while this one polls the maps from
    // the moment it starts: the RPC returns only after the controller's
    // whole-store analysis (warnings), which runs after the push, so waiting
    // for it first would measure max(RPC, visible) instead of visible.
    v1::ApplyResponse resp;
    grpc::Status st;
    Clock::time_point a1;
    std::atomic<bool> rpc_done{false};
    auto a0 = Clock::now();
    std::thread rpc([&] {
      st = Apply(*admin, doc, &resp);
      a1 = Clock::now();
      rpc_done = true;
    });
    bool seen = false;
    auto deadline = a0 + 5s;
    while (Clock::now() < deadline) {  // poll every ~0.2 ms, bounded by the 5 s timeout
      ++polls;
      if (Backends(m, svc, &be) && be.count(fresh)) {
        seen = true;
        break;
      }
      if (rpc_done && !st.ok()) break;
      std::this_thread::sleep_for(200us);  // leave the CPU to the controller and the agent (2 cores)
    }
    auto a2 = Clock::now();
    rpc.join();
    if (!st.ok()) {
      std::fprintf(stderr, "kernel: apply: %s\n", st.error_message().c_str());
      return 1;
    }
    apply_ms.push_back(Ms(a0, a1));
    if (seen) visible_ms.push_back(Ms(a0, a2));
    else ++timeouts;
    if (r % 10 == 0 || !seen)
      std::fprintf(stderr, "kernel rep %d: svc-%d, apply RPC %.2f ms, %s %.2f ms\n", r, svc, Ms(a0, a1),
                   seen ? "visible after" : "NOT visible within", Ms(a0, a2));
    std::this_thread::sleep_for(20ms);
  }
  out["visible_ms"] = Stats(visible_ms);
  out["apply_rpc_ms"] = Stats(apply_ms);
  out["timeouts"] = timeouts;
  out["polls"] = polls;
  out["ok"] = timeouts == 0;
  std::printf("%s\n", out.dump().c_str());
  return timeouts == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  weft::transport::RestrictToTls13();  // as the controller and agents do
  CLI::App app{"weft-cpbench: control-plane benchmark (see bench/README.md)", "weft-cpbench"};
  app.require_subcommand(1, 1);
  Scale s;
  std::string controller, node = "cpb-agent", maps_dir;
  int reset_reps = 3, update_reps = 20, agents = 1000, reps = 5, channels = 20, wave = 50, sync_timeout = 180, wave_timeout = 60;
  size_t chunk_bytes = 64 * 1024 * 1024;  // the whole 10,000/100,000 set (~21 MB) in one request
  auto add_scale = [&](CLI::App* c) {
    c->add_option("--services", s.services)->capture_default_str();
    c->add_option("--endpoints", s.endpoints)->capture_default_str();
  };
  auto* compile = app.add_subcommand("compile", "In-process Compiler: Reset and one-endpoint Update");
  add_scale(compile);
  compile->add_option("--reset-reps", reset_reps)->capture_default_str();
  compile->add_option("--update-reps", update_reps)->capture_default_str();
  auto* apply = app.add_subcommand("apply", "Apply the generated config to a controller");
  add_scale(apply);
  apply->add_option("--controller", controller)->required();
  apply->add_option("--chunk-bytes", chunk_bytes,
                    "Admin Apply request size (limit: weft::transport::kMaxMessageBytes, 256 MiB)")
      ->capture_default_str();
  auto* fanout = app.add_subcommand("fanout", "Simulated agents: time until all ACK one change");
  add_scale(fanout);
  fanout->add_option("--controller", controller)->required();
  fanout->add_option("--agents", agents)->capture_default_str();
  fanout->add_option("--reps", reps)->capture_default_str();
  fanout->add_option("--channels", channels)->capture_default_str();
  fanout->add_option("--wave", wave, "Agents connected at a time")->capture_default_str();
  fanout->add_option("--wave-timeout", wave_timeout, "Seconds a wave may take to ACK its snapshots")
      ->capture_default_str();
  auto* kernel = app.add_subcommand("kernel", "One real agent: apply -> visible in its BPF maps");
  add_scale(kernel);
  kernel->add_option("--controller", controller)->required();
  kernel->add_option("--node", node)->capture_default_str();
  kernel->add_option("--maps", maps_dir, "The agent's pinned maps directory (<pin-root>/<node>/maps)")->required();
  kernel->add_option("--reps", reps)->capture_default_str();
  kernel->add_option("--sync-timeout", sync_timeout, "Seconds to wait for the agent's first ACK")
      ->capture_default_str();
  std::string ca_cert, ca_key, ca_out;
  for (auto* c : {apply, fanout, kernel}) {
    c->add_option("--ca-cert", ca_cert, "The controller's CA certificate (TCP: certificates are issued from it)");
    c->add_option("--ca-key", ca_key, "Its private key");
    c->add_option("--trust-domain", g_pki.trust_domain)->capture_default_str();
  }
  auto* ca_cmd = app.add_subcommand("ca", "Write a CA for weft-controller --ca-cert/--ca-key");
  ca_cmd->add_option("--out", ca_out, "Directory for ca.pem and ca.key")->required();
  CLI11_PARSE(app, argc, argv);
  if (s.services < 1 || s.endpoints < s.services || s.services > 65000) {
    std::fprintf(stderr, "need 1 <= services <= 65000 and endpoints >= services\n");
    return 2;
  }
  if (*ca_cmd) {
    auto key = weft::pki::PrivateKey::Generate();
    if (!key.ok()) return 1;
    auto ca = weft::pki::CertificateAuthority::CreateRoot(*key, g_pki.trust_domain, std::chrono::hours(24 * 30));
    if (!ca.ok() || !weft::sys::MakePrivateDir(ca_out).ok() ||
        !weft::sys::WriteFileAtomic(ca_out + "/ca.pem", ca->certificate().ToPem(), 0600).ok() ||
        !weft::sys::WriteFileAtomic(ca_out + "/ca.key", key->ToPem(), 0600).ok()) {
      std::fprintf(stderr, "ca: cannot write %s\n", ca_out.c_str());
      return 1;
    }
    return 0;
  }
  if (!ca_cert.empty() || !ca_key.empty()) {
    auto cert = weft::sys::ReadSmallFile(ca_cert, weft::pki::kMaxPemBytes);
    auto key = weft::sys::ReadSmallFile(ca_key, weft::pki::kMaxPemBytes);
    auto ca = cert.ok() && key.ok() ? weft::pki::CertificateAuthority::Load(*cert, *key)
                                    : weft::Result<weft::pki::CertificateAuthority>(
                                          weft::Status::Error("read --ca-cert/--ca-key"));
    if (!ca.ok()) {
      std::fprintf(stderr, "--ca-cert/--ca-key: %s\n", ca.status().message().c_str());
      return 2;
    }
    g_pki.ca = std::move(*ca);
  } else if ((*apply || *fanout || *kernel) && !weft::transport::IsUnixAddress(controller)) {
    std::fprintf(stderr, "a TCP --controller is mutual TLS: pass --ca-cert/--ca-key (the controller's CA)\n");
    return 2;
  }
  if (*compile) return CmdCompile(s, reset_reps, update_reps);
  if (*apply) return CmdApply(controller, s, chunk_bytes);
  if (*fanout) return CmdFanout(controller, s, agents, reps, channels, wave, wave_timeout);
  if (*kernel) return CmdKernel(controller, s, node, maps_dir, reps, sync_timeout);
  return 2;
}
