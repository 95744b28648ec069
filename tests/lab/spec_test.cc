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

TEST(LabSpec, VipsSkipFixedOnesAndStayStableAcrossApply) {
  SpecFile f(kShop);
  auto spec = LoadSpec(f.path());
  ASSERT_TRUE(spec.ok());
  auto v = AllocateVips(*spec, {});
  ASSERT_TRUE(v.ok()) << v.status().message();
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[0].vips, (std::vector<std::string>{"10.96.0.2", "fd00:96::1"}));  // .1 is db's
  EXPECT_EQ((*v)[1].vips, (std::vector<std::string>{"10.96.0.1"}));
  EXPECT_TRUE((*v)[2].vips.empty());  // headless
  // A new service listed first does not move the existing allocations.
  SpecFile g(std::string("kind: Service\nmetadata: {name: aaa}\nspec: {ports: [{port: 1}]}\n---\n") + kShop);
  auto spec2 = LoadSpec(g.path());
  ASSERT_TRUE(spec2.ok());
  auto v2 = AllocateVips(*spec2, *v);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ((*v2)[0].vips, (std::vector<std::string>{"10.96.0.3"}));
  EXPECT_EQ((*v2)[1].vips, (*v)[0].vips);
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

TEST(LabSpec, AgentConfigHasServicesWithVipsAndOneEntryPerPod) {
  SpecFile f(kShop);
  auto spec = LoadSpec(f.path());
  ASSERT_TRUE(spec.ok());
  auto v = AllocateVips(*spec, {});
  ASSERT_TRUE(v.ok());
  std::vector<PodView> pods = {
      {"web-0", "shop", "10.244.1.2", "fd00:244:1::2", {{"app", "web"}}, "web-sa", {{"http", 8080}}}};
  auto docs = YAML::LoadAll(RenderAgentConfig(*spec, *v, pods));
  int services = 0, entries = 0;
  for (const auto& d : docs) {
    if (!d.IsMap()) continue;
    std::string kind = d["kind"].as<std::string>();
    if (kind == "Service") {
      ++services;
      if (d["metadata"]["name"].as<std::string>() == "web") {
        EXPECT_EQ(d["spec"]["clusterIP"].as<std::string>(), "10.96.0.2");
        EXPECT_EQ(d["spec"]["clusterIPs"].size(), 2u);
        EXPECT_EQ(d["metadata"]["namespace"].as<std::string>(), "shop");
      }
    } else if (kind == "WorkloadEntry") {
      ++entries;
      EXPECT_EQ(d["spec"]["ports"]["http"].as<int>(), 8080);
      EXPECT_EQ(d["spec"]["serviceAccount"].as<std::string>(), "web-sa");
    } else {
      ADD_FAILURE() << "unexpected kind " << kind;
    }
  }
  EXPECT_EQ(services, 3);
  EXPECT_EQ(entries, 2);  // v4 + v6
}

}  // namespace
}  // namespace weft::cli::lab
