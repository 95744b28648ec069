// Scale (informational, no timed assertion): 10,000 services and 100,000
// endpoints; one endpoint change recompiles exactly one service.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "controller/compiler.hpp"
#include "tests/compiler/test_resources.hpp"

namespace weft::controller::testing {
namespace {

constexpr int kServices = 10000;
constexpr int kPerService = 10;

std::string Ip(int base, int n) {
  return std::to_string(base) + "." + std::to_string((n >> 16) & 255) + "." + std::to_string((n >> 8) & 255) + "." +
         std::to_string(n & 255);
}

config::Resource Endpoint(int svc, int i, int weight) {
  int n = svc * kPerService + i;
  return FromJson({{"apiVersion", "networking.istio.io/v1"},
                   {"kind", "WorkloadEntry"},
                   {"metadata", {{"name", "w" + std::to_string(n)},
                                 {"annotations", {{"weft.io/node", "node" + std::to_string(n % 100)}}}}},
                   {"spec", {{"address", Ip(10, n)},
                             {"labels", {{"app", "svc" + std::to_string(svc)}, {"version", i % 2 ? "v1" : "v2"}}},
                             {"ports", {{"http", 8080}}},
                             {"weight", weight}}}},
                  "ns" + std::to_string(svc % 50));
}

double Ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

TEST(Scale, TenThousandServicesHundredThousandEndpoints) {
  std::vector<config::Resource> all;
  all.reserve(kServices * (kPerService + 1));
  for (int s = 0; s < kServices; ++s) {
    all.push_back(FromJson({{"apiVersion", "v1"},
                            {"kind", "Service"},
                            {"metadata", {{"name", "svc" + std::to_string(s)}}},
                            {"spec", {{"clusterIP", Ip(172, s)},
                                      {"selector", {{"app", "svc" + std::to_string(s)}}},
                                      {"ports", {{{"name", "http"}, {"port", 80}, {"targetPort", "http"}}}}}}},
                           "ns" + std::to_string(s % 50)));
    for (int i = 0; i < kPerService; ++i) all.push_back(Endpoint(s, i, 1));
  }
  Compiler c;
  auto t0 = std::chrono::steady_clock::now();
  ChangeSet reset = c.Reset(all);
  double reset_ms = Ms(t0);
  EXPECT_EQ(reset.services.size(), static_cast<size_t>(kServices));
  EXPECT_EQ(reset.workloads.size(), static_cast<size_t>(kServices * kPerService));

  t0 = std::chrono::steady_clock::now();
  ChangeSet one = c.Update({Endpoint(4242, 3, 5)}, {});
  double update_ms = Ms(t0);
  EXPECT_EQ(one.services, (std::set<std::string>{"ns" + std::to_string(4242 % 50) + "/svc4242"}));
  EXPECT_TRUE(one.workloads.empty());  // the weight is not part of the workload's identity

  config::Resource moved = Endpoint(999, 1, 1);
  moved.object["spec"]["address"] = "10.200.0.1";
  t0 = std::chrono::steady_clock::now();
  ChangeSet readdressed = c.Update({moved}, {});
  double second_ms = Ms(t0);
  EXPECT_EQ(readdressed.services.size(), 1u);
  EXPECT_EQ(readdressed.workloads.size(), 1u);

  t0 = std::chrono::steady_clock::now();
  ChangeSet gone = c.Update({}, {{"WorkloadEntry", "ns" + std::to_string(17 % 50), "w" + std::to_string(17 * kPerService)}});
  double delete_ms = Ms(t0);
  EXPECT_EQ(gone.services.size(), 1u);

  t0 = std::chrono::steady_clock::now();
  v1::NodeConfig snap = c.Snapshot("node7");
  double snapshot_ms = Ms(t0);
  EXPECT_EQ(snap.services_size(), kServices);
  EXPECT_EQ(snap.local_workloads_size(), kServices * kPerService / 100);

  std::printf("[scale] %d services, %d endpoints: Reset %.0f ms; one endpoint Update %.3f ms (first: includes protobuf lazy reflection init), "
              "%.3f ms (next); one endpoint delete %.3f ms; Snapshot(node) %.0f ms (%zu bytes)\n",
              kServices, kServices * kPerService, reset_ms, update_ms, second_ms, delete_ms, snapshot_ms,
              snap.ByteSizeLong());
}

}  // namespace
}  // namespace weft::controller::testing
