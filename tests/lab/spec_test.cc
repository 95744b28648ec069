// Unit tests of the lab's input handling: no root, no kernel.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "cli/lab/spec.hpp"

namespace weft::cli::lab {
namespace {

class SpecFile {
 public:
  explicit SpecFile(const std::string& text) {
    path_ = "/tmp/weft-spec-test-" + std::to_string(getpid()) + "-" + std::to_string(n_++) + ".yaml";
    std::ofstream(path_) << text;
  }
  ~SpecFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int n_ = 0;
  std::string path_;
};

constexpr const char* kShop = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ipFamilyPolicy: PreferDualStack
  ports: [{port: 80, targetPort: http}]
  selector: {app: web}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: 10.96.0.1
  ports: [{port: 5432}]
  selector: {app: db}
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, selector: {app: db}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: web, version: v2}}
    spec:
      serviceAccountName: web-sa
      containers: [{name: c, ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ignored}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web-sa}
)";

TEST(LabSpec, ParsesKindsAndIgnoresOthers) {
  SpecFile f(kShop);
  auto spec = LoadSpec(f.path());
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->services.size(), 3u);
  ASSERT_EQ(spec->deployments.size(), 1u);
  EXPECT_EQ(spec->deployments[0].replicas, 2);
  EXPECT_EQ(spec->deployments[0].ns, "shop");
  EXPECT_EQ(spec->deployments[0].service_account, "web-sa");
  EXPECT_EQ(spec->deployments[0].labels.at("version"), "v2");
  ASSERT_EQ(spec->deployments[0].ports.size(), 1u);
  EXPECT_EQ(spec->deployments[0].ports[0].name, "http");
  EXPECT_EQ(spec->ignored_kinds.at("VirtualService"), 1);
  EXPECT_EQ(spec->ignored_kinds.count("ServiceAccount"), 0u);
  EXPECT_TRUE(spec->dual_stack());
}

TEST(LabSpec, ErrorsNameFileAndField) {
  SpecFile f("kind: Deployment\nmetadata: {name: Web_1}\n");
  auto spec = LoadSpec(f.path());
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find(f.path()), std::string::npos);
  EXPECT_NE(spec.status().message().find("metadata.name"), std::string::npos);
  SpecFile g("a: [unclosed\n");
  EXPECT_FALSE(LoadSpec(g.path()).ok());
  EXPECT_FALSE(LoadSpec("/nonexistent/x.yaml").ok());
}

TEST(LabSpec, VipsComeFromTheStoredService) {
  auto v = VipsOfService("web", "shop", nlohmann::json::parse(
                                            R"({"spec":{"clusterIP":"10.96.0.2","clusterIPs":["fd00:96::1","10.96.0.2"]}})"));
  EXPECT_EQ(v.vips, (std::vector<std::string>{"10.96.0.2", "fd00:96::1"}));  // v4 first
  EXPECT_TRUE(VipsOfService("db", "shop", nlohmann::json::parse(R"({"spec":{"clusterIP":"None"}})")).vips.empty());
  EXPECT_EQ(VipsOfService("x", "d", nlohmann::json::parse(R"({"spec":{"clusterIP":"10.96.0.9"}})")).vips,
            (std::vector<std::string>{"10.96.0.9"}));
}

TEST(LabSpec, HostsShortNamesOnlyInOwnNamespace) {
  std::vector<ServiceVips> vips = {{"web", "shop", {"10.96.0.2"}}, {"db", "default", {"10.96.0.1"}}};
  PodView pod{"client-0", "default", "10.244.1.2", "", {}, "default", {}};
  std::string hosts = RenderHosts(pod, vips);
  EXPECT_NE(hosts.find("10.96.0.1\tdb db.default db.default.svc db.default.svc.cluster.local"), std::string::npos)
      << hosts;
  EXPECT_NE(hosts.find("10.96.0.2\tweb.shop web.shop.svc web.shop.svc.cluster.local"), std::string::npos) << hosts;
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost"), std::string::npos);
}

TEST(LabSpec, OneWorkloadEntryPerPodAddressWithItsNode) {
  std::vector<PodView> pods = {
      {"web-0", "shop", "10.244.1.2", "fd00:244:1::2", {{"app", "web"}}, "web-sa", {{"http", 8080}, {"", 9}}, "node1"},
      {"db-0", "default", "10.244.2.2", "", {{"app", "db"}}, "default", {}, "node2"}};
  auto docs = YAML::LoadAll(RenderPodWorkloads(pods));
  std::vector<std::string> names;
  for (const auto& d : docs) {
    if (!d.IsMap()) continue;
    EXPECT_EQ(d["apiVersion"].as<std::string>(), "networking.istio.io/v1");
    EXPECT_EQ(d["kind"].as<std::string>(), "WorkloadEntry");
    names.push_back(d["metadata"]["name"].as<std::string>());
    if (names.back() == "web-0-v6") {
      EXPECT_EQ(d["spec"]["address"].as<std::string>(), "fd00:244:1::2");
      EXPECT_EQ(d["metadata"]["annotations"]["weft.io/node"].as<std::string>(), "node1");
      EXPECT_EQ(d["spec"]["ports"]["http"].as<int>(), 8080);
      EXPECT_EQ(d["spec"]["ports"].size(), 1u);  // unnamed ports are not WorkloadEntry ports
      EXPECT_EQ(d["spec"]["serviceAccount"].as<std::string>(), "web-sa");
      EXPECT_EQ(d["spec"]["labels"]["app"].as<std::string>(), "web");
    }
    if (names.back() == "db-0") EXPECT_EQ(d["metadata"]["annotations"]["weft.io/node"].as<std::string>(), "node2");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"web-0", "web-0-v6", "db-0"}));
  EXPECT_EQ(WorkloadNames(pods[0]), (std::vector<std::string>{"web-0", "web-0-v6"}));
  EXPECT_EQ(WorkloadNames(pods[1]), (std::vector<std::string>{"db-0"}));
}

}  // namespace
}  // namespace weft::cli::lab
