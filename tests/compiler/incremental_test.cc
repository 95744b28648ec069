// Incremental compilation as a property: after any sequence of Updates the
// snapshots equal those of a fresh Reset over the same resources, and each
// ChangeSet names exactly the services and workloads whose compiled form changed.
#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

#include <random>

#include "controller/compiler.hpp"
#include "tests/compiler/compiler_test_util.hpp"
#include "tests/compiler/test_resources.hpp"

namespace weft::controller::testing {
namespace {

using google::protobuf::util::MessageDifferencer;
using nlohmann::json;

const std::vector<std::string> kNodes = {"n1", "n2", "n3"};
const std::vector<std::string> kNamespaces = {"ns1", "ns2"};

// A random version of one object of a small universe (a few keys per kind, so
// that changes collide and overlap).
class Universe {
 public:
  explicit Universe(uint32_t seed) : rng_(seed) {}

  config::Resource Random() {
    switch (Pick(10)) {
      case 0:
      case 1:
        return Service();
      case 2:
      case 3:
      case 4:
      case 5:
        return Workload();
      case 6:
        return Rule();
      case 7:
        return Route();
      case 8:
        return Peer();
      default:
        return Authz();
    }
  }

  config::ResourceKey RandomKey() { return Random().key; }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  std::string Ns() { return kNamespaces[Pick(2)]; }
  std::string App() { return "a" + std::to_string(Pick(3)); }

  config::Resource Service() {
    int i = static_cast<int>(Pick(4));
    json spec = {{"clusterIP", "10.96.0." + std::to_string(10 + i)},
                 {"ports", {{{"name", "http"}, {"port", 80}, {"targetPort", Pick(2) ? json("web") : json(8080)}},
                            {{"name", "tcp-x"}, {"port", 81}}}}};
    if (Pick(4)) spec["selector"] = {{"app", App()}};
    if (Pick(3) == 0) spec["clusterIPs"] = {"10.96.0." + std::to_string(10 + i), "fd00::" + std::to_string(10 + i)};
    if (Pick(4) == 0) spec["sessionAffinity"] = "ClientIP";
    return FromJson({{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", "s" + std::to_string(i)}}},
                     {"spec", spec}},
                    Ns());
  }

  config::Resource Workload() {
    int i = static_cast<int>(Pick(12));
    json labels = {{"app", App()}, {"version", "v" + std::to_string(Pick(2) + 1)}};
    json spec = {{"address", Pick(4) ? "10.0.0." + std::to_string(i + 1) : "fd00::" + std::to_string(i + 1)},
                 {"labels", labels}};
    if (Pick(2)) spec["ports"] = {{"web", 8000 + Pick(3)}};
    if (Pick(4) == 0) spec["weight"] = Pick(4);
    if (Pick(3) == 0) spec["serviceAccount"] = "sa" + std::to_string(Pick(2));
    return FromJson({{"apiVersion", "networking.istio.io/v1"},
                     {"kind", "WorkloadEntry"},
                     {"metadata", {{"name", "w" + std::to_string(i)}, {"annotations", {{"weft.io/node", kNodes[Pick(3)]}}}}},
                     {"spec", spec}},
                    Ns());
  }

  config::Resource Rule() {
    int i = static_cast<int>(Pick(4));
    json spec = {{"host", "s" + std::to_string(i)},
                 {"subsets", {{{"name", "v1"}, {"labels", {{"version", "v1"}}}},
                              {{"name", "v2"}, {"labels", {{"version", "v2"}}}}}}};
    if (Pick(3) == 0) spec["trafficPolicy"] = {{"tls", {{"mode", "ISTIO_MUTUAL"}}}};
    if (Pick(3) == 0) spec["trafficPolicy"]["loadBalancer"] = {{"consistentHash", {{"useSourceIp", true}}}};
    return FromJson({{"apiVersion", "networking.istio.io/v1"}, {"kind", "DestinationRule"},
                     {"metadata", {{"name", "dr" + std::to_string(i)}}}, {"spec", spec}},
                    Ns());
  }

  config::Resource Route() {
    int i = static_cast<int>(Pick(4));
    std::string host = "s" + std::to_string(i);
    json route;
    switch (Pick(4)) {
      case 0:
        route = {{{"destination", {{"host", host}, {"subset", "v1"}}}}};
        break;
      case 1:
        route = {{{"destination", {{"host", host}, {"subset", "v1"}}}, {"weight", 30}},
                 {{"destination", {{"host", host}, {"subset", "v2"}}}, {"weight", 70}}};
        break;
      case 2:
        route = {{{"destination", {{"host", "elsewhere"}}}}};
        break;
      default:
        route = {{{"destination", {{"host", host}}}}};
    }
    json rule = {{"route", route}};
    if (Pick(4) == 0) rule["timeout"] = "2s";
    return FromJson({{"apiVersion", "networking.istio.io/v1"}, {"kind", "VirtualService"},
                     {"metadata", {{"name", "vs" + std::to_string(i)}}},
                     {"spec", {{"hosts", {host}}, {"http", {rule}}}}},
                    Ns());
  }

  config::Resource Peer() {
    int i = static_cast<int>(Pick(3));
    static const char* const kModes[] = {"STRICT", "PERMISSIVE", "DISABLE", "UNSET"};
    json spec = {{"mtls", {{"mode", kModes[Pick(4)]}}}};
    if (Pick(2)) spec["selector"] = {{"matchLabels", {{"app", App()}}}};
    std::string ns = Pick(3) == 0 ? "istio-system" : Ns();
    return FromJson({{"apiVersion", "security.istio.io/v1"}, {"kind", "PeerAuthentication"},
                     {"metadata", {{"name", "pa" + std::to_string(i)}}}, {"spec", spec}},
                    ns);
  }

  config::Resource Authz() {
    int i = static_cast<int>(Pick(3));
    json spec = json::object();
    if (Pick(2)) spec["selector"] = {{"matchLabels", {{"version", "v" + std::to_string(Pick(2) + 1)}}}};
    if (Pick(3) == 0) spec["action"] = "DENY";
    switch (Pick(6)) {  // L7 (never matches at L4), identities, CIDRs (identity refinement), ports
      case 0:
        spec["rules"] = {{{"to", {{{"operation", {{"methods", {"GET"}}}}}}}}};
        break;
      case 1:
        spec["rules"] = {{{"from", {{{"source", {{"principals", {"cluster.local/ns/ns1/sa/sa" + std::to_string(Pick(2))}}}}}}}}};
        break;
      case 2:
        spec["rules"] = {{{"from", {{{"source", {{"namespaces", {Ns()}}}}}}}}};
        break;
      case 3:
        spec["rules"] = {{{"from", {{{"source", {{"ipBlocks", {Pick(2) ? "10.0.0.0/29" : "10.0.0." + std::to_string(1 + Pick(12))}}}}}}}}};
        break;
      case 4:
        spec["rules"] = {{{"to", {{{"operation", {{"ports", {"80"}}}}}}}}};
        break;
      default:
        break;  // no rules: ALLOW nothing / DENY nothing
    }
    std::string ns = Pick(4) == 0 ? "istio-system" : Ns();
    return FromJson({{"apiVersion", "security.istio.io/v1"}, {"kind", "AuthorizationPolicy"},
                     {"metadata", {{"name", "ap" + std::to_string(i)}}}, {"spec", spec}},
                    ns);
  }

  std::mt19937 rng_;
};

struct View {
  std::map<std::string, v1::Service> services;
  std::map<std::string, std::pair<std::string, v1::Workload>> workloads;  // key -> (node, workload)
};

View ViewOf(const Compiler& c) {
  View v;
  for (const auto& node : kNodes) {
    v1::NodeConfig cfg = c.Snapshot(node);
    for (const auto& s : cfg.services()) v.services[s.namespace_() + "/" + s.name()] = s;
    for (const auto& w : cfg.local_workloads()) v.workloads[w.namespace_() + "/" + w.name()] = {node, w};
  }
  return v;
}

template <typename Map, typename Eq>
std::set<std::string> Differing(const Map& a, const Map& b, Eq eq) {
  std::set<std::string> out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !eq(v, it->second)) out.insert(k);
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) out.insert(k);
  }
  return out;
}

void ExpectSameSnapshots(const Compiler& a, const Compiler& b, const std::string& where) {
  for (const auto& node : kNodes) {
    v1::NodeConfig x = a.Snapshot(node), y = b.Snapshot(node);
    ASSERT_TRUE(MessageDifferencer::Equals(x, y)) << where << " node " << node << "\nincremental:\n"
                                                  << x.DebugString() << "\nfresh:\n"
                                                  << y.DebugString();
  }
}

class RandomSequences : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RandomSequences, UpdateEqualsResetAndChangeSetsAreExact) {
  Universe u(GetParam());
  std::map<config::ResourceKey, config::Resource> current;
  for (int i = 0; i < 25; ++i) {
    auto r = u.Random();
    current[r.key] = r;
  }
  auto values = [&] {
    std::vector<config::Resource> out;
    for (const auto& [k, r] : current) out.push_back(r);
    return out;
  };
  // Identity numbers depend on history: a "fresh" compiler starts from the
  // incremental one's persisted state, as a restarted controller would.
  MemoryStateStore inc_state;
  CompilerOptions inc_opts;
  inc_opts.state = &inc_state;
  Compiler inc(inc_opts);
  inc.Reset(values());
  for (int step = 0; step < 150; ++step) {
    std::vector<config::Resource> upserted;
    std::vector<config::ResourceKey> deleted;
    std::mt19937 pick(GetParam() * 1000 + step);
    int changes = 1 + static_cast<int>(pick() % 3);
    std::set<config::ResourceKey> touched;  // one version per key per revision
    for (int i = 0; i < changes; ++i) {
      if (pick() % 4 == 0) {
        config::ResourceKey k = u.RandomKey();
        if (!touched.insert(k).second) continue;
        current.erase(k);
        deleted.push_back(k);
      } else {
        config::Resource r = u.Random();
        if (!touched.insert(r.key).second) continue;
        current[r.key] = r;
        upserted.push_back(r);
      }
    }
    View before = ViewOf(inc);
    std::map<std::string, v1::NodeConfig> before_snaps;
    for (const auto& node : kNodes) before_snaps[node] = inc.Snapshot(node);
    ChangeSet cs = inc.Update(upserted, deleted);
    View after = ViewOf(inc);
    std::string where = "seed " + std::to_string(GetParam()) + " step " + std::to_string(step);
    EXPECT_EQ(cs.services, Differing(before.services, after.services, [](const auto& a, const auto& b) {
                return MessageDifferencer::Equals(a, b);
              })) << where;
    EXPECT_EQ(cs.workloads, Differing(before.workloads, after.workloads, [](const auto& a, const auto& b) {
                return a.first == b.first && MessageDifferencer::Equals(a.second, b.second);
              })) << where;
    // Each node's delta brings its previous snapshot to its new one.
    for (const auto& node : kNodes) {
      v1::NodeConfig patched = before_snaps[node];
      ApplyDelta(inc.Delta(node, cs), &patched);
      ExpectSameConfig(patched, inc.Snapshot(node), where + " delta of " + node);
      // The mesh-wide tables' change set is exact.
      EXPECT_EQ(TableDiff(before_snaps[node], inc.Snapshot(node)), TableChanges(cs)) << where;
    }
    MemoryStateStore fresh_state = inc_state;
    CompilerOptions fresh_opts;
    fresh_opts.state = &fresh_state;
    Compiler fresh(fresh_opts);
    fresh.Reset(values());
    ExpectSameSnapshots(inc, fresh, where);
    if (HasFailure()) return;
  }
  // Reset back to nothing removes everything, and says so.
  View last = ViewOf(inc);
  ChangeSet cleared = inc.Reset({});
  EXPECT_EQ(cleared.services.size(), last.services.size());
  EXPECT_EQ(cleared.workloads.size(), last.workloads.size());
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomSequences, ::testing::Values(1u, 2u, 3u, 42u, 1234u));

TEST(Incremental, OneWorkloadChangeTouchesOnlyItsServices) {
  auto svc = [](const std::string& name, const std::string& app) {
    return FromJson({{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", name}}},
                     {"spec", {{"clusterIP", "10.96.1." + std::to_string(name.size())}, {"selector", {{"app", app}}},
                               {"ports", {{{"port", 80}}}}}}});
  };
  auto we = [](const std::string& name, const std::string& app, const std::string& ip) {
    return FromJson({{"apiVersion", "networking.istio.io/v1"}, {"kind", "WorkloadEntry"},
                     {"metadata", {{"name", name}, {"annotations", {{"weft.io/node", "n1"}}}}},
                     {"spec", {{"address", ip}, {"labels", {{"app", app}}}}}});
  };
  Compiler c;
  c.Reset({svc("a", "a"), svc("bb", "b"), svc("ccc", "c"), we("wa", "a", "10.0.0.1"), we("wb", "b", "10.0.0.2")});
  // Relabelled from b to c: the old and the new selector's services change.
  ChangeSet cs = c.Update({we("wb", "c", "10.0.0.2")}, {});
  EXPECT_EQ(cs.services, (std::set<std::string>{"default/bb", "default/ccc"}));
  EXPECT_EQ(cs.workloads, (std::set<std::string>{"default/wb"}));
  // New address: only its service.
  cs = c.Update({we("wa", "a", "10.0.0.9")}, {});
  EXPECT_EQ(cs.services, (std::set<std::string>{"default/a"}));
}

}  // namespace
}  // namespace weft::controller::testing
