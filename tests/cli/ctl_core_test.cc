// weftctl's pure parts: -f inputs, kind names, tables, controller choice,
// gRPC status -> exit code. No controller, no privileges (label unit).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/ctl/address.hpp"
#include "cli/ctl/admin_client.hpp"
#include "cli/ctl/format.hpp"
#include "cli/ctl/inputs.hpp"
#include "cli/ctl/kinds.hpp"

namespace weft::cli::ctl {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/weft-ctltest-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  void Write(const std::string& rel, const std::string& content) const {
    fs::create_directories(fs::path(path_ + "/" + rel).parent_path());
    std::ofstream(path_ + "/" + rel) << content;
  }

 private:
  std::string path_;
};

TEST(CtlInputs, FileDirStdinAndErrors) {
  TempDir d;
  d.Write("b.yaml", "b");
  d.Write("a.yml", "a");
  d.Write("c.json", "c");
  d.Write("notes.txt", "x");
  d.Write("sub/z.yaml", "z");
  std::istringstream in("from-stdin");
  auto r = ReadInputs({d.path(), "-"}, false, in);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].name, d.path() + "/a.yml");
  EXPECT_EQ((*r)[1].name, d.path() + "/b.yaml");
  EXPECT_EQ((*r)[2].name, d.path() + "/c.json");
  EXPECT_EQ((*r)[3].name, "-");
  EXPECT_EQ((*r)[3].content, "from-stdin");

  std::istringstream none;
  auto rec = ReadInputs({d.path() + "/"}, true, none);
  ASSERT_TRUE(rec.ok());
  ASSERT_EQ(rec->size(), 4u);
  EXPECT_EQ(rec->back().name, d.path() + "/sub/z.yaml");
  EXPECT_EQ(rec->back().content, "z");

  auto missing = ReadInputs({d.path() + "/nope.yaml"}, false, none);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.yaml"), std::string::npos);
  d.Write("empty/sub/x.yaml", "x");
  auto empty = ReadInputs({d.path() + "/empty"}, false, none);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("-R"), std::string::npos);
  EXPECT_FALSE(ReadInputs({}, false, none).ok());
  std::istringstream twice("x");
  EXPECT_FALSE(ReadInputs({"-", "-"}, false, twice).ok());
}

TEST(CtlKinds, CanonicalAndDisplay) {
  EXPECT_EQ(CanonicalKind("svc"), "Service");
  EXPECT_EQ(CanonicalKind("services"), "Service");
  EXPECT_EQ(CanonicalKind("VS"), "VirtualService");
  EXPECT_EQ(CanonicalKind("destinationrules.networking.istio.io"), "DestinationRule");
  EXPECT_EQ(CanonicalKind("ap"), "AuthorizationPolicy");
  EXPECT_EQ(CanonicalKind("Frobnicator"), "Frobnicator");
  EXPECT_EQ(DisplayKind("Service"), "service");
  EXPECT_EQ(DisplayKind("VirtualService"), "virtualservice.networking.istio.io");
  EXPECT_EQ(DisplayKind("PeerAuthentication"), "peerauthentication.security.istio.io");
  EXPECT_EQ(DisplayKind("Deployment"), "deployment.apps");
}

weft::v1::Resource Res(const std::string& kind, const std::string& ns, const std::string& name, uint64_t rv,
                       const std::string& json) {
  weft::v1::Resource r;
  r.set_kind(kind);
  r.set_namespace_(ns);
  r.set_name(name);
  r.set_resource_version(rv);
  r.set_json(json);
  r.set_yaml("kind: " + kind + "\nmetadata:\n  name: " + name + "\n");
  return r;
}

TEST(CtlFormat, ServiceTableWithVipsAndPorts) {
  std::vector<weft::v1::Resource> rs = {
      Res("Service", "default", "reviews", 7,
          R"({"spec":{"clusterIP":"10.96.0.3","clusterIPs":["10.96.0.3","fd00:96::3"],)"
          R"("ports":[{"port":9080,"name":"http"}],"selector":{"app":"reviews"}}})"),
      Res("Service", "default", "db", 9, R"({"spec":{"clusterIP":"None","ports":[{"port":53,"protocol":"UDP"}]}})"),
  };
  std::string t = FormatGetTable(rs, false, false, 0);
  EXPECT_EQ(t,
            "NAME      TYPE        CLUSTER-IP(S)          PORTS      RESOURCE-VERSION\n"
            "reviews   ClusterIP   10.96.0.3,fd00:96::3   9080/TCP   7\n"
            "db        ClusterIP   None                   53/UDP     9\n");
  std::string wide = FormatGetTable(rs, true, true, 0);
  EXPECT_NE(wide.find("NAMESPACE   NAME"), std::string::npos) << wide;
  EXPECT_NE(wide.find("app=reviews"), std::string::npos) << wide;
}

TEST(CtlFormat, IstioKindsAndAge) {
  std::vector<weft::v1::Resource> vs = {Res(
      "VirtualService", "default", "reviews", 3,
      R"({"metadata":{"creationTimestamp":"2024-01-01T00:00:00Z"},"spec":{"hosts":["reviews"],"http":[{}]}})")};
  int64_t t0 = 1704067200;  // 2024-01-01T00:00:00Z
  EXPECT_EQ(FormatGetTable(vs, false, false, t0 + 300),
            "NAME      GATEWAYS   HOSTS     AGE\n"
            "reviews   <none>     reviews   5m\n");
  std::vector<weft::v1::Resource> dr = {
      Res("DestinationRule", "default", "reviews", 4,
          R"({"spec":{"host":"reviews","subsets":[{"name":"v1"},{"name":"v2"}]}})")};
  EXPECT_NE(FormatGetTable(dr, false, true, 0).find("v1,v2"), std::string::npos);
  std::vector<weft::v1::Resource> we = {Res(
      "WorkloadEntry", "default", "reviews-v1-0", 5,
      R"({"metadata":{"annotations":{"weft.io/node":"node2"}},"spec":{"address":"10.244.2.3"}})")};
  EXPECT_NE(FormatGetTable(we, false, false, 0).find("10.244.2.3   node2"), std::string::npos);
  EXPECT_EQ(FormatAge(42), "42s");
  EXPECT_EQ(FormatAge(3 * 3600), "3h");
  EXPECT_EQ(FormatAge(5 * 86400), "5d");
}

TEST(CtlFormat, YamlJsonChangesDiagnosticsStatus) {
  std::vector<weft::v1::Resource> rs = {Res("Service", "default", "a", 1, R"({"kind":"Service"})"),
                                        Res("Service", "default", "b", 2, R"({"kind":"Service"})")};
  EXPECT_EQ(FormatGetYaml(rs, false), "---\nkind: Service\nmetadata:\n  name: a\n---\nkind: Service\nmetadata:\n  name: b\n");
  auto j = nlohmann::json::parse(FormatGetJson(rs, false));
  EXPECT_EQ(j["kind"], "List");
  EXPECT_EQ(j["items"].size(), 2u);

  weft::v1::ResourceChange c;
  c.mutable_ref()->set_kind("VirtualService");
  c.mutable_ref()->set_name("reviews");
  c.set_action("configured");
  EXPECT_EQ(FormatChange(c, false), "virtualservice.networking.istio.io/reviews configured");
  EXPECT_EQ(FormatChange(c, true), "virtualservice.networking.istio.io/reviews configured (dry run)");

  weft::v1::Diagnostic d;
  d.set_file("vs.yaml");
  d.set_line(12);
  d.set_column(9);
  d.set_resource("VirtualService default/reviews");
  d.set_field("spec.http[0].route[0].destination.subset");
  d.set_message("subset \"v9\" is not defined");
  d.set_code("ReferencedResourceNotFound");
  EXPECT_EQ(FormatDiagnostic(d),
            "vs.yaml:12:9: VirtualService default/reviews: spec.http[0].route[0].destination.subset: subset \"v9\" is "
            "not defined [ReferencedResourceNotFound]");

  weft::v1::StatusResponse s;
  auto* n = s.add_nodes();
  n->set_node("node1");
  n->set_state("NACKED");
  n->set_last_sent_version(4);
  n->set_last_acked_version(3);
  n->set_agent_version("0.1.0");
  n->set_nack_reason("program service default/s9: map full");
  EXPECT_EQ(FormatStatus(s),
            "NODE    STATE    SENT   ACKED   AGENT-VERSION   REASON\n"
            "node1   NACKED   4      3       0.1.0           program service default/s9: map full\n");
}

// A megabyte of node name, version or reason (an older or hostile
// controller) is cut, not padded into every row: before, `weftctl status`
// padded columns to the widest cell (gigabytes for a 1 MiB field x rows).
TEST(CtlFormat, StatusCellsAreCappedAndOnOneLine) {
  weft::v1::StatusResponse s;
  for (int i = 0; i < 3; ++i) {
    auto* n = s.add_nodes();
    n->set_node(i == 0 ? std::string(1 << 20, 'n') : "node" + std::to_string(i));
    n->set_state(i == 2 ? "BEHIND" : "NACKED");
    n->set_agent_version(std::string(1 << 20, 'v'));
    n->set_nack_reason("bad\nthing " + std::string(1 << 20, 'r'));
    n->set_state_reason("controller at revision 1, node at 2");
  }
  const std::string out = FormatStatus(s);
  EXPECT_LT(out.size(), 2000u);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4);
  EXPECT_NE(out.find("bad thing rrr"), std::string::npos) << out;
  EXPECT_NE(out.find("..."), std::string::npos) << out;
  EXPECT_NE(out.find("BEHIND   0      0       vvv"), std::string::npos) << out;
  EXPECT_NE(out.find("controller at revision 1, node at 2"), std::string::npos) << out;
}

TEST(CtlAddress, FlagEnvLabDefault) {
  TempDir d;
  EXPECT_EQ(ResolveController("10.0.0.1:15012", "unix:///x").address, "10.0.0.1:15012");
  EXPECT_EQ(ResolveController("", "unix:///x", d.path()).address, "unix:///x");
  EXPECT_EQ(ResolveController("", nullptr, d.path()).address, kDefaultController);
  d.Write("a/state.json", R"({"lab":"a","controller":{"admin_socket":"/run/weft/lab/a/controller/admin.sock"}})");
  d.Write("b/state.json", R"({"lab":"b"})");  // no controller
  auto one = ResolveController("", nullptr, d.path());
  EXPECT_EQ(one.address, "unix:///run/weft/lab/a/controller/admin.sock");
  EXPECT_EQ(one.source, "lab a");
  d.Write("c/state.json", R"({"lab":"c","controller":{"admin_socket":"/run/weft/lab/c/controller/admin.sock"}})");
  EXPECT_EQ(ResolveController("", nullptr, d.path()).address, kDefaultController);  // two labs: ambiguous
}

TEST(CtlAdminClient, ExitCodes) {
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OK), 0);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INVALID_ARGUMENT), 1);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::NOT_FOUND), 1);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAVAILABLE), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::DEADLINE_EXCEEDED), 2);
  EXPECT_FALSE(ConnectAdmin("localhost:99999").ok());
  EXPECT_TRUE(ConnectAdmin("unix:///tmp/nothing.sock").ok());  // lazy: connects on the first call
}

}  // namespace
}  // namespace weft::cli::ctl
