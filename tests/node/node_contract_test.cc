// The node-local contract (weft/node/*.hpp) without a kernel or root: the
// names.json writer and reader (round trip, the schema as bytes, every
// refusal), the enum names, the lookup order and the client hash, the layout,
// and the agent's admin endpoint in process (answers, refusals, deadline,
// stale and live sockets).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/node/admin.hpp"
#include "weft/node/enum_names.hpp"
#include "weft/node/lookup.hpp"
#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"
#include "weft/unique_fd.hpp"

namespace weft::node {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/weft-node-XXXXXX";
    path_ = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

unsigned Mode(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

NodeNames Sample() {
  NodeNames n;
  n.version = 7;
  n.identities[256] = {256, "spiffe://cluster.local/ns/default/sa/web", "default", "web", {}};
  n.identities[257] = {257, "", "", "", {"203.0.113.0/24"}};
  n.policies[3] = {3, "default/allow-web", "ALLOW"};
  EndpointName e;
  e.workload = "default/web-1";
  e.ifindex = 12;
  e.ifname = "veth-web-1";
  e.ep_id = 1;
  e.identity = 256;
  e.addresses = {"10.1.0.5", "fd00::5"};
  e.enforce_ingress = true;
  e.policies = {"default/allow-web"};
  n.endpoints.push_back(e);
  EndpointName unplaced;
  unplaced.workload = "default/web-2";
  unplaced.identity = 256;
  n.endpoints.push_back(unplaced);
  return n;
}

// ---- names.json ----------------------------------------------------------------------

TEST(NamesFile, RoundTripKeepsEveryField) {
  const NodeNames n = Sample();
  const std::string text = RenderNames(n);
  auto back = ParseNames(text, "names.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(RenderNames(*back), text);
  EXPECT_EQ(back->version, 7u);
  ASSERT_EQ(back->identities.size(), 2u);
  EXPECT_EQ(back->identities.at(256).spiffe_id, "spiffe://cluster.local/ns/default/sa/web");
  EXPECT_EQ(back->identities.at(256).ns, "default");
  EXPECT_EQ(back->identities.at(257).cidrs, std::vector<std::string>{"203.0.113.0/24"});
  EXPECT_EQ(back->policies.at(3).name, "default/allow-web");
  EXPECT_EQ(back->policies.at(3).action, "ALLOW");
  ASSERT_EQ(back->endpoints.size(), 2u);
  const EndpointName& e = back->endpoints[0];
  EXPECT_EQ(e.workload, "default/web-1");
  EXPECT_EQ(e.ifindex, 12u);
  EXPECT_EQ(e.ifname, "veth-web-1");
  EXPECT_EQ(e.ep_id, 1u);
  EXPECT_EQ(e.identity, 256u);
  EXPECT_EQ(e.addresses, (std::vector<std::string>{"10.1.0.5", "fd00::5"}));
  EXPECT_TRUE(e.enforce_ingress);
  EXPECT_EQ(e.policies, std::vector<std::string>{"default/allow-web"});
  EXPECT_EQ(back->endpoints[1].ifindex, 0u) << "an unplaced workload";
}

// The schema is the bytes other versions read: its field names and types are fixed.
TEST(NamesFile, SchemaAsWritten) {
  nlohmann::json j = nlohmann::json::parse(RenderNames(Sample()));
  EXPECT_EQ(j["schema"], kNamesSchema);
  EXPECT_EQ(j["version"], 7);
  EXPECT_EQ(j["identities"][0],
            nlohmann::json::parse(R"({"id": 256, "spiffe_id": "spiffe://cluster.local/ns/default/sa/web",
                                      "namespace": "default", "service_account": "web", "cidrs": []})"));
  EXPECT_EQ(j["policies"][0], nlohmann::json::parse(R"({"id": 3, "name": "default/allow-web", "action": "ALLOW"})"));
  EXPECT_EQ(j["endpoints"][0], nlohmann::json::parse(R"({"workload": "default/web-1", "ifindex": 12,
      "ifname": "veth-web-1", "ep_id": 1, "identity": 256, "addresses": ["10.1.0.5", "fd00::5"],
      "enforce_ingress": true, "policies": ["default/allow-web"]})"));
}

TEST(NamesFile, FileWithoutSchemaIsSchemaOne) {
  // As agents wrote it before the field existed.
  auto n = ParseNames(R"({"version": 3, "identities": [], "policies": [], "endpoints": []})", "old.json");
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->version, 3u);
}

TEST(NamesFile, Refusals) {
  const std::string ok_ep = R"({"workload": "a/b", "ifindex": 1, "ifname": "v", "ep_id": 1, "identity": 256,
                                "addresses": [], "enforce_ingress": false, "policies": []})";
  auto doc = [](const std::string& identities, const std::string& policies, const std::string& endpoints,
                const std::string& head = R"("schema": 1, "version": 1)") {
    return "{" + head + ", \"identities\": [" + identities + "], \"policies\": [" + policies +
           "], \"endpoints\": [" + endpoints + "]}";
  };
  struct Row {
    const char* name;
    std::string text;
    int err;
    const char* says;
  };
  const std::vector<Row> rows = {
      {"not JSON", "{\"version\": ", EINVAL, "not JSON"},
      {"not an object", "[1, 2]", EINVAL, "not a JSON object"},
      {"a newer schema", doc("", "", "", R"("schema": 2, "version": 1)"), EPROTO, "schema 2, this build reads schema 1"},
      {"schema 0", doc("", "", "", R"("schema": 0, "version": 1)"), EPROTO, "schema 0"},
      {"schema as a string", doc("", "", "", R"("schema": "1", "version": 1)"), EINVAL,
       "\"schema\": expected an unsigned 32-bit integer"},
      {"no version", R"({"schema": 1, "identities": [], "policies": [], "endpoints": []})", EINVAL,
       "\"version\": missing"},
      {"no endpoints", R"({"schema": 1, "version": 1, "identities": [], "policies": []})", EINVAL,
       "\"endpoints\": missing: expected an array of objects"},
      {"identity id a string", doc(R"({"id": "256", "spiffe_id": "", "namespace": "", "service_account": "",
                                       "cidrs": []})", "", ""),
       EINVAL, "identities[0]: \"id\": expected an unsigned 32-bit integer"},
      {"identity id past 32 bits", doc(R"({"id": 4294967296, "spiffe_id": "", "namespace": "",
                                           "service_account": "", "cidrs": []})", "", ""),
       EINVAL, "identities[0]: \"id\""},
      {"identity listed twice",
       doc(R"({"id": 9, "spiffe_id": "", "namespace": "", "service_account": "", "cidrs": []},
              {"id": 9, "spiffe_id": "", "namespace": "", "service_account": "", "cidrs": []})", "", ""),
       EINVAL, "identities[1]: identity 9 is listed twice"},
      {"policy without action", doc("", R"({"id": 3, "name": "a/b"})", ""), EINVAL,
       "policies[0]: \"action\": missing"},
      {"endpoint policies as ids", doc("", "", R"({"workload": "a/b", "ifindex": 1, "ifname": "v", "ep_id": 1,
          "identity": 256, "addresses": [], "enforce_ingress": false, "policies": [3]})"),
       EINVAL, "endpoints[0]: \"policies\": expected an array of strings"},
      {"endpoint enforce_ingress as a number", doc("", "", R"({"workload": "a/b", "ifindex": 1, "ifname": "v",
          "ep_id": 1, "identity": 256, "addresses": [], "enforce_ingress": 1, "policies": []})"),
       EINVAL, "endpoints[0]: \"enforce_ingress\": expected true or false"},
      {"an endpoint not an object", doc("", "", ok_ep + ", 5"), EINVAL, "endpoints[1]: expected an object"},
      {"nested too deep", doc("", "", ok_ep, R"("schema": 1, "version": 1, "x": [[[[[[[[1]]]]]]]])"), EINVAL,
       "nested deeper than 8 levels"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto n = ParseNames(r.text, "/x/names.json");
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().err(), r.err) << n.status().message();
    EXPECT_NE(n.status().message().find("/x/names.json"), std::string::npos) << n.status().message();
    EXPECT_NE(n.status().message().find(r.says), std::string::npos) << n.status().message();
  }
  // Brackets inside strings are not nesting.
  EXPECT_TRUE(ParseNames(doc("", R"({"id": 3, "name": "[[[[[[[[[[", "action": "{{{{{{{{{{"})", ""), "x").ok());
}

TEST(NamesFile, WriterMakesPrivateFilesReaderRefusesOversizeAndLinks) {
  TempDir dir;
  const StatePaths sp(dir.path() + "/state", "node1");
  ASSERT_TRUE(WriteNamesFile(sp.names, RenderNames(Sample())).ok());
  EXPECT_EQ(Mode(sp.dir), 0700u);
  EXPECT_EQ(Mode(sp.names), 0600u);
  auto n = ReadNamesFile(sp.names);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->endpoints.size(), 2u);

  const size_t size = RenderNames(Sample()).size();
  auto small = ReadNamesFile(sp.names, size - 1);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().err(), EFBIG) << small.status().message();
  EXPECT_NE(small.status().message().find(sp.names), std::string::npos);
  EXPECT_FALSE(ParseNames(std::string(size, ' '), "x", size - 1).ok());

  const std::string link = dir.path() + "/link.json";
  ASSERT_EQ(::symlink(sp.names.c_str(), link.c_str()), 0);
  auto via_link = ReadNamesFile(link);
  ASSERT_FALSE(via_link.ok());
  EXPECT_EQ(via_link.status().err(), ELOOP) << via_link.status().message();

  auto missing = ReadNamesFile(dir.path() + "/nope/names.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().err(), ENOENT);
}

// ---- enum names, lookup order, client hash, layout --------------------------------------

TEST(EnumNames, EveryKnownValueAndUnknownOnes) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {DropReasonName(WEFT_DROP_NONE), "none"},
      {DropReasonName(WEFT_DROP_POLICY_DENIED), "policy_denied"},
      {DropReasonName(WEFT_DROP_POLICY_DEFAULT), "policy_default"},
      {DropReasonName(WEFT_DROP_NO_IDENTITY), "no_identity"},
      {DropReasonName(WEFT_DROP_CT_INVALID), "ct_invalid"},
      {DropReasonName(WEFT_DROP_MALFORMED), "malformed"},
      {DropReasonName(WEFT_DROP_SOURCE), "forged_source"},
      {DropReasonName(WEFT_DROP_MAX), "reason_7"},
      {VerdictName(WEFT_VERDICT_ALLOW), "allow"},
      {VerdictName(WEFT_VERDICT_STEER), "steer"},
      {VerdictName(9), "verdict-9"},
      {VerdictOutcome(WEFT_VERDICT_DENY), "denied"},
      {VerdictOutcome(WEFT_VERDICT_STEER), "steered"},
      {VerdictOutcome(WEFT_VERDICT_NONE), "none"},
      {DirectionName(WEFT_DIR_INGRESS), "ingress"},
      {DirectionName(WEFT_DIR_EGRESS), "egress"},
      {DirectionName(2), "dir-2"},
      {ProtoName(6), "tcp"},
      {ProtoName(17), "udp"},
      {ProtoName(0), "any"},
      {ProtoName(1), "1"},
      {AlgoName(WEFT_LB_MAGLEV), "maglev"},
      {AlgoName(5), "algo-5"},
      {LbStatName(WEFT_STAT_CONNECT_REWRITTEN), "connect_rewritten"},
      {LbStatName(WEFT_STAT_REVNAT_UPDATE_ERR), "revnat_update_err"},
      {TraceStageName(WEFT_TRACE_STAGE_POLICY), "policy"},
      {TraceStageName(WEFT_TRACE_STAGE_SOURCE), "source"},
      {TraceStageName(42), "stage_42"},
      {ReservedIdentityName(WEFT_IDENTITY_ANY), "any"},
      {ReservedIdentityName(WEFT_IDENTITY_HOST), "host"},
      {ReservedIdentityName(WEFT_IDENTITY_FIRST_DYNAMIC), ""},
  };
  for (const auto& [got, want] : rows) EXPECT_EQ(got, want);
  EXPECT_TRUE(VerdictAllows(WEFT_VERDICT_ALLOW));
  EXPECT_TRUE(VerdictAllows(WEFT_VERDICT_STEER));
  EXPECT_FALSE(VerdictAllows(WEFT_VERDICT_DENY));
  EXPECT_FALSE(VerdictAllows(WEFT_VERDICT_NONE));
}

TEST(Lookup, PolicyOrderAndDecision) {
  auto order = PolicyLookupOrder(300, 8080);
  const std::vector<std::pair<uint32_t, uint16_t>> want = {{300, 8080}, {300, 0}, {0, 8080}, {0, 0}};
  ASSERT_EQ(order.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(order[i].peer, want[i].first) << i;
    EXPECT_EQ(order[i].port, want[i].second) << i;
  }
  weft_policy_key k = PolicyKey(4, order[1], 17, WEFT_DIR_EGRESS);
  EXPECT_EQ(k.ep_id, 4u);
  EXPECT_EQ(k.peer_identity, 300u);
  EXPECT_EQ(k.port, 0);
  EXPECT_EQ(k.proto, 17);
  EXPECT_EQ(k.direction, WEFT_DIR_EGRESS);

  struct Row {
    const char* name;
    std::optional<weft_policy_val> hit;
    uint32_t peer;
    uint8_t verdict, reason;
    uint32_t policy;
  };
  const std::vector<Row> rows = {
      {"allow", weft_policy_val{WEFT_VERDICT_ALLOW, 0, 0, 5}, 300, WEFT_VERDICT_ALLOW, WEFT_DROP_NONE, 5},
      {"steer passes", weft_policy_val{WEFT_VERDICT_STEER, 0, 0, 6}, 300, WEFT_VERDICT_STEER, WEFT_DROP_NONE, 6},
      {"deny", weft_policy_val{WEFT_VERDICT_DENY, 0, 0, 7}, 300, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DENIED, 7},
      {"explicit default deny",
       weft_policy_val{WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DEFAULT, 0, 8}, 300, WEFT_VERDICT_DENY,
       WEFT_DROP_POLICY_DEFAULT, 8},
      {"unknown verdict denies", weft_policy_val{9, 0, 0, 2}, 300, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DENIED, 2},
      {"no entry", std::nullopt, 300, WEFT_VERDICT_DENY, WEFT_DROP_POLICY_DEFAULT, 0},
      {"no entry, unknown peer", std::nullopt, WEFT_IDENTITY_UNKNOWN, WEFT_VERDICT_DENY, WEFT_DROP_NO_IDENTITY, 0},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    PolicyOutcome o = DecidePolicy(r.hit ? &*r.hit : nullptr, r.peer);
    EXPECT_EQ(o.verdict, r.verdict);
    EXPECT_EQ(o.reason, r.reason);
    EXPECT_EQ(o.policy_id, r.policy);
  }
}

TEST(Lookup, MaglevClientHashKnownAnswers) {
  // murmur3 fmix64, low 32 bits: fmix64(1) = 0xb456bcfc34c2cb2c.
  EXPECT_EQ(weft_client_hash(0), 0u);
  EXPECT_EQ(weft_client_hash(1), 0x34c2cb2cu);
  EXPECT_EQ(weft_client_hash(2), 0x650683e7u);
  EXPECT_EQ(MaglevSlot(1, 16381), 1131u);
  EXPECT_EQ(MaglevSlot(4096, 16381), 3667u);
  EXPECT_EQ(MaglevSlot(~uint64_t{0}, 251), 81u);
  EXPECT_EQ(MaglevSlot(1, 0), 0u) << "no slots: no division";
}

TEST(Paths, Layout) {
  PinPaths p("/sys/fs/bpf/weft", "node1");
  EXPECT_EQ(p.node_dir, "/sys/fs/bpf/weft/node1");
  EXPECT_EQ(p.Map(WEFT_MAP_SERVICES), "/sys/fs/bpf/weft/node1/maps/weft_services");
  EXPECT_EQ(p.links_dir, "/sys/fs/bpf/weft/node1/links");
  EXPECT_EQ(p.Prog(kProgFromPod), "/sys/fs/bpf/weft/node1/progs/weft_tc_from_pod");
  EXPECT_EQ(p.TcxLink(12, true), "/sys/fs/bpf/weft/node1/tc_links/tcx_12_ingress");
  EXPECT_EQ(p.TcxLink(12, false), "/sys/fs/bpf/weft/node1/tc_links/tcx_12_egress");
  StatePaths s("/run/weft/agent", "node1");
  EXPECT_EQ(s.names, "/run/weft/agent/node1/names.json");
  EXPECT_EQ(s.applied, "/run/weft/agent/node1/applied.json");
  EXPECT_EQ(s.admin_socket, "/run/weft/agent/node1/agent.sock");
  EXPECT_EQ(s.credentials, "/run/weft/agent/node1/credentials");
  for (const char* bad : {"", ".", "..", "a/b"}) EXPECT_FALSE(CheckNodeComponent(bad).ok()) << bad;
  EXPECT_TRUE(CheckNodeComponent("node-1.example").ok());
}

// ---- the admin endpoint, in process ------------------------------------------------------

AgentInfo SampleInfo() {
  AgentInfo i;
  i.node = "node1";
  i.pin_root = "/sys/fs/bpf/weft-x";
  i.state_dir = "/run/weft/x";
  i.netns = "/run/netns/x-node1";
  i.pid = 1234;
  i.agent_version = "0.1.0";
  i.abi_version = WEFT_ABI_VERSION;
  i.names_schema = kNamesSchema;
  i.mode = "controller";
  i.source = "127.0.0.1:15012";
  i.applied_version = 42;
  i.generation = 3;
  i.healthy = true;
  i.controller_connected = true;
  i.metrics = "127.0.0.1:9464";
  return i;
}

TEST(AdminEndpoint, AnswersInfoOnAPrivateSocketAndRemovesIt) {
  TempDir dir;
  const std::string sock = StatePaths(dir.path() + "/state", "node1").admin_socket;
  {
    auto server = AdminServer::Start(sock, SampleInfo);
    ASSERT_TRUE(server.ok()) << server.status().message();
    EXPECT_EQ(Mode(sock) & 0777, 0600u);
    EXPECT_EQ(Mode(fs::path(sock).parent_path()), 0700u);
    auto info = QueryAgent(sock);
    ASSERT_TRUE(info.ok()) << info.status().message();
    EXPECT_EQ(RenderAgentInfo(*info), RenderAgentInfo(SampleInfo())) << "every field comes back";
    EXPECT_EQ(info->PodNetnsPath(), "/run/netns/x-node1");
    info->netns = "";
    EXPECT_EQ(info->PodNetnsPath(), "/proc/1234/ns/net");
  }
  EXPECT_FALSE(fs::exists(sock)) << "the socket goes with the server";
  EXPECT_FALSE(fs::exists(fs::path(sock).parent_path())) << "and so does the empty directory it made";
  EXPECT_TRUE(fs::exists(dir.path() + "/state")) << "not the parents";
  auto gone = QueryAgent(sock);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().err(), ENOENT) << gone.status().message();

  // A directory that was there (the agent's state: names.json, ...) stays.
  const std::string node_dir = fs::path(sock).parent_path();
  ASSERT_TRUE(fs::create_directory(node_dir));
  { ASSERT_TRUE(AdminServer::Start(sock, SampleInfo).ok()); }
  EXPECT_FALSE(fs::exists(sock));
  EXPECT_TRUE(fs::is_directory(node_dir));
}

TEST(AdminEndpoint, RefusesWhatItDoesNotServe) {
  TempDir dir;
  const std::string sock = dir.path() + "/agent.sock";
  auto server = AdminServer::Start(sock, SampleInfo);
  ASSERT_TRUE(server.ok()) << server.status().message();
  struct Row {
    const char* name;
    std::string request;
    const char* says;
  };
  const std::vector<Row> rows = {
      {"unknown request", "config\n", "unknown request \\\"config\\\" (known: info)"},
      {"oversize request", std::string(kMaxAdminRequest + 10, 'a') + "\n", "request longer than 256 bytes"},
      {"binary junk", std::string("\x01\xff\"", 3) + "\n", "unknown request \\\"???\\\""},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto answer = AdminExchange(sock, r.request);
    ASSERT_TRUE(answer.ok()) << answer.status().message();
    EXPECT_NE(answer->find(r.says), std::string::npos) << *answer;
    auto parsed = ParseAgentInfo(*answer, "agent");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().err(), EACCES) << parsed.status().message();
  }
  // "info" without a newline (the client closed its side) is a request too.
  auto bare = AdminExchange(sock, "info");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(ParseAgentInfo(*bare, "agent").ok()) << *bare;

  // Answers this build cannot read.
  for (const char* text : {"{\"protocol\": 2, \"node\": \"n\"}", "[]", "{\"protocol\": 1}"}) {
    auto p = ParseAgentInfo(text, "agent x");
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().err(), EPROTO) << p.status().message();
  }
}

// A client that connects and says nothing holds the endpoint for one deadline
// at most: the next client is answered after it.
TEST(AdminEndpoint, SilentClientIsDroppedAtTheDeadline) {
  TempDir dir;
  const std::string sock = dir.path() + "/agent.sock";
  auto server = AdminServer::Start(sock, SampleInfo);
  ASSERT_TRUE(server.ok()) << server.status().message();
  UniqueFd silent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock.c_str());
  ASSERT_EQ(::connect(silent.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  auto info = QueryAgent(sock, kAdminDeadline * 3);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->node, "node1");
  char c;
  EXPECT_EQ(::recv(silent.get(), &c, 1, 0), 0) << "the silent client was closed without an answer";
}

TEST(AdminEndpoint, StaleSocketIsReplacedALiveOneOrAFileIsNot) {
  TempDir dir;
  const std::string sock = dir.path() + "/agent.sock";
  {
    // A socket nobody serves (an agent killed with -9 leaves one).
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock.c_str());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  }
  auto first = AdminServer::Start(sock, SampleInfo);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(QueryAgent(sock).ok());

  auto second = AdminServer::Start(sock, SampleInfo);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().err(), EADDRINUSE) << second.status().message();
  EXPECT_TRUE(QueryAgent(sock).ok()) << "the first one still serves";
  Status live = RemoveStaleSocket(sock);  // weft-agent cleanup next to a running agent
  EXPECT_EQ(live.err(), EADDRINUSE) << live.message();
  EXPECT_TRUE(fs::exists(sock));
  first->reset();
  EXPECT_FALSE(fs::exists(sock));

  // Something else at the path is not ours to remove.
  const std::string file = dir.path() + "/file.sock";
  std::ofstream(file) << "x";
  auto on_file = AdminServer::Start(file, SampleInfo);
  ASSERT_FALSE(on_file.ok());
  EXPECT_EQ(on_file.status().err(), EEXIST) << on_file.status().message();
  EXPECT_TRUE(fs::exists(file));

  auto too_long = AdminServer::Start(dir.path() + "/" + std::string(120, 'x'), SampleInfo);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().err(), ENAMETOOLONG) << too_long.status().message();
}

}  // namespace
}  // namespace weft::node
