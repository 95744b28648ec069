// End-to-end tests of the real weft-agent binary in controller mode
// (--controller): an in-process fake weft.v1.ConfigDiscovery server scripts
// snapshots and deltas and records the agent's hello and ACK/NACKs; the maps
// are read back through their pins (see agent_fixture.hpp for the cgroup, pins
// and cleanup). The real controller is not involved: the fake one serves
// mutual TLS with a controller certificate from a test CA, and the agent gets
// a node identity from that CA in its --credentials-dir.
#include <grpcpp/grpcpp.h>

#include <sys/stat.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "tests/agent/agent_fixture.hpp"
#include "tests/support/tls_util.hpp"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"
#include "weft/pki.hpp"
#include "weft/transport.hpp"
#include "weft/v1/config.grpc.pb.h"
#include "weft/v1/config.pb.h"

namespace weft {
namespace {

// ---- message builders ----

std::string V4(const std::string& text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text.c_str(), &a), 1) << text;
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

// One TCP port, one backend per address (weight 1) on `port`.
v1::Service Svc(const std::string& name, const std::string& vip, uint32_t port,
                const std::vector<std::string>& backends) {
  v1::Service s;
  s.set_namespace_("default");
  s.set_name(name);
  s.set_hostname(name + ".default.svc.cluster.local");
  auto* p = s.add_ports();
  p->set_vip(V4(vip));
  p->set_port(port);
  p->set_protocol(v1::TCP);
  p->set_name("tcp");
  for (const auto& b : backends) {
    auto* be = p->add_backends();
    be->set_address(V4(b));
    be->set_port(port);
    be->set_weight(1);
    be->set_workload("default/" + name + "-" + b);
  }
  return s;
}

v1::ControllerMessage Snapshot(uint64_t version, const std::string& nonce, const std::vector<v1::Service>& svcs,
                               const std::string& store_id = "") {
  v1::ControllerMessage m;
  m.set_version(version);
  m.set_nonce(nonce);
  m.set_store_id(store_id);
  auto* snap = m.mutable_snapshot();
  for (const auto& s : svcs) *snap->add_services() = s;
  return m;
}

// A delta onto `base` (default: version - 1, the push before it).
v1::ControllerMessage Delta(uint64_t version, const std::string& nonce, const std::vector<v1::Service>& upserts,
                            const std::vector<std::string>& removes = {}, std::optional<uint64_t> base = {}) {
  v1::ControllerMessage m;
  m.set_version(version);
  m.set_nonce(nonce);
  m.set_base_version(base ? *base : version - 1);
  auto* d = m.mutable_delta();
  for (const auto& s : upserts) *d->add_upserted_services() = s;
  for (const auto& r : removes) d->add_removed_services(r);
  return m;
}

const v1::Service kEcho = Svc("echo", "10.96.2.1", 7, {"10.1.0.1"});
const v1::Service kWeb = Svc("web", "10.96.2.2", 80, {"10.1.0.2", "10.1.0.3"});
const v1::Service kDb = Svc("db", "10.96.2.3", 5432, {"10.1.0.4"});
const v1::Service kCache = Svc("cache", "10.96.2.4", 6379, {"10.1.0.5"});

// ---- the fake controller ----

class FakeController final : public v1::ConfigDiscovery::Service {
 public:
  // Sent right after each hello, like the real controller's snapshot.
  void SetSnapshot(v1::ControllerMessage m) {
    std::lock_guard lk(mu_);
    snapshot_ = std::move(m);
  }

  // Queued for the live stream (or the next one).
  void Push(v1::ControllerMessage m) {
    std::lock_guard lk(mu_);
    outbox_.push_back(std::move(m));
    cv_.notify_all();
  }

  void BeginShutdown() {
    std::lock_guard lk(mu_);
    shutting_down_ = true;
    cv_.notify_all();
  }

  std::vector<v1::NodeHello> hellos() {
    std::lock_guard lk(mu_);
    return hellos_;
  }

  // Waits up to `limit` for a reply matching `pred` (ACK or NACK) received
  // since the reply with index `from`; returns it.
  std::optional<v1::AgentMessage> WaitReply(const std::function<bool(const v1::AgentMessage&)>& pred,
                                            std::chrono::milliseconds limit = 10s) {
    std::unique_lock lk(mu_);
    std::optional<v1::AgentMessage> found;
    cv_.wait_for(lk, limit, [&] {
      for (const auto& r : replies_)
        if (pred(r)) {
          found = r;
          return true;
        }
      return false;
    });
    return found;
  }

  std::optional<v1::AgentMessage> WaitAck(uint64_t version, const std::string& nonce,
                                          std::chrono::milliseconds limit = 10s) {
    return WaitReply(
        [&](const v1::AgentMessage& m) {
          return (m.has_ack() && m.ack().version() == version && m.ack().nonce() == nonce) ||
                 (m.has_nack() && m.nack().version() == version && m.nack().nonce() == nonce);
        },
        limit);
  }

  grpc::Status Stream(grpc::ServerContext* ctx,
                      grpc::ServerReaderWriter<v1::ControllerMessage, v1::AgentMessage>* rw) override {
    v1::AgentMessage first;
    if (!rw->Read(&first) || !first.has_hello())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected a hello first");
    std::optional<v1::ControllerMessage> snap;
    {
      std::lock_guard lk(mu_);
      hellos_.push_back(first.hello());
      snap = snapshot_;
    }
    if (snap) rw->Write(*snap);
    bool reader_done = false;
    std::thread reader([&] {
      v1::AgentMessage m;
      while (rw->Read(&m)) {
        std::lock_guard lk(mu_);
        replies_.push_back(m);
        cv_.notify_all();
      }
      std::lock_guard lk(mu_);
      reader_done = true;
      cv_.notify_all();
    });
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait_for(lk, 50ms, [&] { return !outbox_.empty() || reader_done || shutting_down_; });
      if (reader_done || shutting_down_ || ctx->IsCancelled()) break;
      while (!outbox_.empty()) {
        v1::ControllerMessage m = std::move(outbox_.front());
        outbox_.pop_front();
        lk.unlock();
        rw->Write(m);
        lk.lock();
      }
    }
    lk.unlock();
    ctx->TryCancel();  // ends the reader's Read
    reader.join();
    return grpc::Status::OK;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<v1::ControllerMessage> snapshot_;
  std::deque<v1::ControllerMessage> outbox_;
  std::vector<v1::NodeHello> hellos_;
  std::vector<v1::AgentMessage> replies_;
  bool shutting_down_ = false;
};

// A gRPC server for FakeController on 127.0.0.1:port; Kill() and Start() again
// on the same port simulate a controller restart.
class FakeServer {
 public:
  // Serves TLS as `identity` (its roots verify client certificates).
  FakeServer(FakeController& svc, uint16_t port, credentials::Identity identity)
      : svc_(svc), port_(port), identity_(std::move(identity)) {}
  ~FakeServer() { Kill(); }
  bool Start() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port_),
                       transport::TlsServerCredentials(transport::StaticCertificates(identity_)));
    b.RegisterService(&svc_);
    server_ = b.BuildAndStart();
    return server_ != nullptr;
  }
  void Kill() {
    if (!server_) return;
    svc_.BeginShutdown();
    server_->Shutdown(std::chrono::system_clock::now() + 200ms);
    server_->Wait();
    server_.reset();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  FakeController& svc_;
  uint16_t port_;
  credentials::Identity identity_;
  std::unique_ptr<grpc::Server> server_;
};

const std::string kTrustDomain = "cluster.local";

class ControllerTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // The mesh's CA: the controller's serving certificate and the node's identity.
    auto ca = pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), kTrustDomain, 24h);
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    ca_ = std::make_unique<pki::CertificateAuthority>(std::move(*ca));
    creds_dir_ = tmp_ + "/credentials";
    auto node = weft::testing::IssueIdentity(*ca_, pki::NodeId(kTrustDomain, kNode));
    credentials::Paths paths{creds_dir_};
    ASSERT_TRUE(sys::MakePrivateDir(creds_dir_).ok());
    ASSERT_TRUE(credentials::WriteKey(paths, node.key).ok());
    ASSERT_TRUE(credentials::WriteCertificates(paths, node.chain, node.bundle).ok());

    svc_ = std::make_unique<FakeController>();
    ctl_port_ = FreePort();
    server_ = std::make_unique<FakeServer>(*svc_, ctl_port_, ControllerIdentity());
    ASSERT_TRUE(server_->Start()) << "fake controller on " << server_->address();
    source_args_ = {"--controller", server_->address(), "--credentials-dir", creds_dir_};
  }
  credentials::Identity ControllerIdentity() {
    return weft::testing::IssueIdentity(*ca_, pki::ControllerId(kTrustDomain), pki::Usage::kServer);
  }
  void TearDown() override {
    KillAgent(SIGKILL);  // before the server: no reconnect noise in the log
    server_.reset();
    svc_.reset();
    AgentTest::TearDown();
  }

  std::set<std::string> Services() { return PinnedServices(MapPin(WEFT_MAP_SERVICES)); }
  std::vector<uint32_t> MapIds() {
    std::vector<uint32_t> ids;
    for (auto* m : kMaps) ids.push_back(IdOfPinned(MapPin(m), false));
    return ids;
  }
  std::vector<uint32_t> LinkIds() {
    std::vector<uint32_t> ids;
    for (auto* p : kPrograms) ids.push_back(IdOfPinned(LinkPin(p), true));
    return ids;
  }

  uint16_t ctl_port_ = 0;
  std::unique_ptr<pki::CertificateAuthority> ca_;
  std::string creds_dir_;
  std::unique_ptr<FakeController> svc_;
  std::unique_ptr<FakeServer> server_;
};

// (a) Snapshot -> maps programmed -> ACK with its version and nonce. The hello
// names the node, the version and the kernel's capabilities.
TEST_F(ControllerTest, SnapshotProgramsMapsAndAcks) {
  svc_->SetSnapshot(Snapshot(7, "n-7", {kEcho, kWeb}));
  StartAgent();
  auto ack = svc_->WaitAck(7, "n-7");
  ASSERT_TRUE(ack) << "no reply to version 7";
  EXPECT_TRUE(ack->has_ack()) << ack->DebugString();
  EXPECT_EQ(Services(), (std::set<std::string>{"10.96.2.1:7", "10.96.2.2:80"}));
  EXPECT_EQ(CountEntries(MapPin(WEFT_MAP_BACKENDS), sizeof(uint32_t)), 3u);
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));

  auto hellos = svc_->hellos();
  ASSERT_EQ(hellos.size(), 1u);
  EXPECT_EQ(hellos[0].node(), kNode);
  EXPECT_EQ(hellos[0].agent_version(), WEFT_AGENT_VERSION);
  EXPECT_EQ(hellos[0].applied_version(), 0u);
  EXPECT_FALSE(hellos[0].capabilities().kernel_release().empty());
  EXPECT_TRUE(hellos[0].capabilities().bpf_link());
  EXPECT_TRUE(hellos[0].capabilities().sk_storage());  // the object loaded with an SK_STORAGE map

  EXPECT_TRUE(WaitFor([&] { return Metric("weft_controller_connected") == 1; }));
  EXPECT_EQ(Metric("weft_config_version"), 7);
  EXPECT_EQ(Metric("weft_config_nacks_total"), 0);
  EXPECT_EQ(Metric("weft_map_entries{map=\"weft_services\"}"), 2);
  EXPECT_EQ(Metric(
                "weft_service_connections_total{service=\"default/web\",vip=\"10.96.2.2\",port=\"80\",proto=\"tcp\"}"),
            0);

  // SIGTERM with the stream up: the stream is cancelled, exit 0, data plane stays.
  EXPECT_EQ(KillAgent(SIGTERM), 0);
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  EXPECT_EQ(Services().size(), 2u);
}

// (b) Deltas add and remove services; the maps follow; each is ACKed.
TEST_F(ControllerTest, DeltaAddsAndRemovesServices) {
  svc_->SetSnapshot(Snapshot(1, "a", {kEcho, kWeb}));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(1, "a"));

  svc_->Push(Delta(2, "b", {kDb}, {"default/web"}));
  auto r = svc_->WaitAck(2, "b");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Services(), (std::set<std::string>{"10.96.2.1:7", "10.96.2.3:5432"}));
  EXPECT_EQ(CountEntries(MapPin(WEFT_MAP_BACKENDS), sizeof(uint32_t)), 2u);

  // An upsert replaces the whole service: web comes back with one backend.
  svc_->Push(Delta(3, "c", {Svc("web", "10.96.2.2", 80, {"10.1.0.9"})}));
  r = svc_->WaitAck(3, "c");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Services().size(), 3u);
  EXPECT_EQ(CountEntries(MapPin(WEFT_MAP_BACKENDS), sizeof(uint32_t)), 3u);
  EXPECT_EQ(Metric("weft_config_version"), 3);
}

// Backend addresses in weft_backends ("10.1.0.8:80").
std::set<std::string> PinnedBackends(const std::string& pin) {
  std::set<std::string> out;
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  uint32_t key = 0, next = 0;
  const void* prev = nullptr;
  while (fd && bpf_map_get_next_key(fd.get(), prev, &next) == 0) {
    key = next;
    prev = &key;
    weft_backend b{};
    if (bpf_map_lookup_elem(fd.get(), &key, &b) == 0)
      out.insert(IpAddr::FromBytes(b.addr).ToString() + ":" + std::to_string(ntohs(b.port)));
  }
  return out;
}

// A WorkloadEntry the controller places on this node whose address has no
// interface here (no pod; in the agent's netns, the host's, it routes through
// a gateway or nowhere): it cannot be placed for policy, and a connection to
// it would go nowhere or to something unenforced, so its backend is not
// programmed (issue 9 #11). A backend on another node is, as always. It is
// reported once (not at every one-second placement retry) and counted; once
// the workload is gone from this node the backend is programmed again.
TEST_F(ControllerTest, LocalWorkloadWithoutInterfaceIsWithheldAndReportedOnce) {
  v1::ControllerMessage m = Snapshot(3, "u", {Svc("ghost", "10.96.2.9", 80, {"10.1.0.8", "10.1.0.9"})});
  v1::Workload* w = m.mutable_snapshot()->add_local_workloads();
  w->set_namespace_("default");
  w->set_name("ghost-1");
  w->add_addresses(V4("10.1.0.9"));
  w->set_service_account("ghost");
  w->set_identity(300);
  svc_->SetSnapshot(m);
  StartAgent();
  auto ack = svc_->WaitAck(3, "u");
  ASSERT_TRUE(ack && ack->has_ack()) << (ack ? ack->DebugString() : "no reply");
  EXPECT_EQ(PinnedBackends(MapPin(WEFT_MAP_BACKENDS)), std::set<std::string>{"10.1.0.8:80"})
      << "the local workload without an interface is a backend";
  EXPECT_EQ(Metric("weft_backends_withheld"), 1);
  EXPECT_EQ(Metric("weft_workloads_unplaced"), 1);

  // Three placement retries later (one a second), nothing more was logged
  // about it: no line per retry.
  auto count = [&](const std::string& what) {
    std::string log = ReadFile(log_);
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  };
  const size_t lines = count("\n");
  EXPECT_GE(count("ghost-1"), 1u) << "reported: " << ReadFile(log_);
  EXPECT_GE(count("backend address 10.1.0.9"), 1u) << "reported: " << ReadFile(log_);
  std::this_thread::sleep_for(3500ms);
  EXPECT_EQ(count("\n"), lines) << "the agent keeps logging about the unplaced workload:\n" << ReadFile(log_);
  EXPECT_EQ(Metric("weft_backends_withheld"), 1);

  // Gone from this node: an ordinary (remote) backend again.
  v1::ControllerMessage d = Delta(4, "v", {}, {}, 3);
  d.mutable_delta()->add_removed_workloads("default/ghost-1");
  svc_->Push(d);
  auto r = svc_->WaitAck(4, "v");
  ASSERT_TRUE(r && r->has_ack()) << (r ? r->DebugString() : "no reply");
  EXPECT_EQ(PinnedBackends(MapPin(WEFT_MAP_BACKENDS)), (std::set<std::string>{"10.1.0.8:80", "10.1.0.9:80"}));
  EXPECT_EQ(Metric("weft_backends_withheld"), 0);
  EXPECT_EQ(Metric("weft_workloads_unplaced"), 0);
}

// A delta touching one service of many writes only that service's keys in
// the kernel maps: its new backend, its new generation of slots, its entry,
// its old slots and the backend it dropped. Nothing of the other 39.
TEST_F(ControllerTest, DeltaWritesOnlyItsServiceKeys) {
  std::vector<v1::Service> many;
  for (int i = 0; i < 40; ++i)
    many.push_back(Svc("s" + std::to_string(i), "10.96.3." + std::to_string(i + 1), 80,
                       {"10.2." + std::to_string(i) + ".1", "10.2." + std::to_string(i) + ".2",
                        "10.2." + std::to_string(i) + ".3"}));
  svc_->SetSnapshot(Snapshot(1, "a", many));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(1, "a"));
  ASSERT_EQ(Services().size(), 40u);
  const double total = Metric("weft_reconcile_map_writes_total");

  // s7: 10.2.7.3 -> 10.2.99.3.
  svc_->Push(Delta(2, "b", {Svc("s7", "10.96.3.8", 80, {"10.2.7.1", "10.2.7.2", "10.2.99.3"})}));
  auto r = svc_->WaitAck(2, "b");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  // 1 backend + 3 slots + 1 service entry upserted; 3 slots + 1 backend deleted.
  EXPECT_EQ(Metric("weft_reconcile_last_map_writes"), 9);
  EXPECT_EQ(Metric("weft_reconcile_map_writes_total"), total + 9);
  EXPECT_EQ(CountEntries(MapPin(WEFT_MAP_BACKENDS), sizeof(uint32_t)), 120u);

  // A removal deletes that service's entry, its 3 slots and its 3 backends.
  svc_->Push(Delta(3, "c", {}, {"default/s8"}));
  r = svc_->WaitAck(3, "c");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Metric("weft_reconcile_last_map_writes"), 7);
  EXPECT_EQ(Services().size(), 39u);
  EXPECT_EQ(CountEntries(MapPin(WEFT_MAP_BACKENDS), sizeof(uint32_t)), 117u);
}

// (c) A push over --max-services is NACKed with a message naming the limit;
// the maps are unchanged. A delta onto the NACKed version is NACKed too
// (before: it was applied onto the last good config and ACKed, and the
// controller showed the node SYNCED while a service was missing); the full
// snapshot that follows is applied.
TEST_F(ControllerTest, OverCapacityIsNackedAndLastGoodKept) {
  extra_args_ = {"--max-services", "4"};  // ids 1..3: three services fit
  svc_->SetSnapshot(Snapshot(1, "a", {kEcho, kWeb}));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(1, "a"));
  auto before = Services();
  auto writes = Metric("weft_reconcile_map_writes_total");

  svc_->Push(Delta(2, "b", {kDb, kCache}));  // four services
  auto r = svc_->WaitAck(2, "b");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_nack()) << r->DebugString();
  EXPECT_NE(r->nack().error().find("service ids exhausted: more than 3 services"), std::string::npos)
      << r->nack().error();
  EXPECT_EQ(Services(), before);
  EXPECT_EQ(Metric("weft_reconcile_map_writes_total"), writes);  // nothing written, the rollback wrote nothing
  EXPECT_EQ(Metric("weft_config_nacks_total"), 1);
  EXPECT_EQ(Metric("weft_config_version"), 1);
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 200);

  // Onto version 2, which this node did not apply: refused, nothing changed.
  svc_->Push(Delta(3, "c", {kDb}));
  r = svc_->WaitAck(3, "c");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_nack()) << r->DebugString();
  EXPECT_NE(r->nack().error().find("a delta onto version 2, but this node's config is version 1"), std::string::npos)
      << r->nack().error();
  EXPECT_EQ(Services(), before);
  EXPECT_EQ(Metric("weft_config_version"), 1);
  EXPECT_EQ(Metric("weft_config_nacks_total"), 2);

  // The controller's answer to a NACK: a full snapshot.
  svc_->Push(Snapshot(4, "d", {kEcho, kWeb, kDb}));
  r = svc_->WaitAck(4, "d");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Services(), (std::set<std::string>{"10.96.2.1:7", "10.96.2.2:80", "10.96.2.3:5432"}));
  EXPECT_EQ(Metric("weft_config_version"), 4);
  // And deltas follow it again.
  svc_->Push(Delta(5, "e", {}, {"default/db"}));
  r = svc_->WaitAck(5, "e");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Services(), before);
}

// One node state for every consumer: a push that the identity policy applies
// but the socket LB refuses (over --max-services) is NACKed, and the policy
// goes back to the last good state too (before: the LB kept its last good
// config but the policy kept the NACKed one: its new workload counted as
// unplaced and names.json said version 2, which the node never applied).
TEST_F(ControllerTest, NackedPushRollsBackEveryConsumer) {
  extra_args_ = {"--max-services", "4"};  // ids 1..3: three services fit
  auto workload = [](const std::string& name, const std::string& addr) {
    v1::Workload w;
    w.set_namespace_("default");
    w.set_name(name);
    w.add_addresses(V4(addr));
    w.set_service_account(name);
    w.set_identity(300);
    return w;
  };
  v1::ControllerMessage m = Snapshot(1, "a", {kEcho, kWeb});
  *m.mutable_snapshot()->add_local_workloads() = workload("ghost-1", "10.1.0.9");  // no interface here
  svc_->SetSnapshot(m);
  StartAgent();
  auto r = svc_->WaitAck(1, "a");
  ASSERT_TRUE(r && r->has_ack()) << (r ? r->DebugString() : "no reply");
  const std::string names = StateDir() + "/" + kNode + "/names.json";
  ASSERT_NE(ReadFile(names).find("default/ghost-1"), std::string::npos) << ReadFile(names);
  EXPECT_EQ(Metric("weft_workloads_unplaced"), 1);

  v1::ControllerMessage d = Delta(2, "b", {kDb, kCache});  // four services: refused by the LB
  *d.mutable_delta()->add_upserted_workloads() = workload("ghost-2", "10.1.0.10");
  svc_->Push(d);
  r = svc_->WaitAck(2, "b");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_nack()) << r->DebugString();
  EXPECT_NE(r->nack().error().find("service ids exhausted"), std::string::npos) << r->nack().error();
  EXPECT_EQ(Services(), (std::set<std::string>{"10.96.2.1:7", "10.96.2.2:80"}));
  EXPECT_EQ(ReadFile(names).find("default/ghost-2"), std::string::npos) << "the policy kept the NACKed push:\n"
                                                                       << ReadFile(names);
  EXPECT_NE(ReadFile(names).find("\"version\": 1"), std::string::npos) << ReadFile(names);
  EXPECT_EQ(Metric("weft_workloads_unplaced"), 1);
  EXPECT_EQ(Metric("weft_config_version"), 1);

  // The controller's answer, a snapshot that fits, is applied by both.
  v1::ControllerMessage fits = Snapshot(3, "c", {kEcho, kWeb, kDb});
  *fits.mutable_snapshot()->add_local_workloads() = workload("ghost-1", "10.1.0.9");
  *fits.mutable_snapshot()->add_local_workloads() = workload("ghost-2", "10.1.0.10");
  svc_->Push(fits);
  r = svc_->WaitAck(3, "c");
  ASSERT_TRUE(r && r->has_ack()) << (r ? r->DebugString() : "no reply");
  EXPECT_NE(ReadFile(names).find("default/ghost-2"), std::string::npos) << ReadFile(names);
  EXPECT_EQ(Metric("weft_workloads_unplaced"), 2);
}

// An unusable push (a 5-byte VIP) is NACKed before any map write.
TEST_F(ControllerTest, InvalidPushIsNacked) {
  svc_->SetSnapshot(Snapshot(1, "a", {kEcho}));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(1, "a"));
  v1::Service bad = kWeb;
  bad.mutable_ports(0)->set_vip(std::string("\x0a\x60\x02\x02\x00", 5));
  svc_->Push(Delta(2, "b", {bad}));
  auto r = svc_->WaitAck(2, "b");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_nack()) << r->DebugString();
  EXPECT_NE(r->nack().error().find("service default/web port tcp: vip has 5 bytes"), std::string::npos)
      << r->nack().error();
  EXPECT_EQ(Services(), (std::set<std::string>{"10.96.2.1:7"}));
}

// (d) The controller goes away: the maps stay as they are; the agent
// reconnects with backoff when it returns on the same port and re-applies the
// snapshot with zero map writes, then ACKs.
TEST_F(ControllerTest, ControllerRestartResyncsWithoutMapWrites) {
  svc_->SetSnapshot(Snapshot(5, "a", {kEcho, kWeb}));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(5, "a"));
  ASSERT_TRUE(WaitFor([&] { return Metric("weft_controller_connected") == 1; }));
  auto services = Services();
  auto map_ids = MapIds();
  double writes = Metric("weft_reconcile_map_writes_total");
  double reconciles = Metric("weft_reconcile_total");
  EXPECT_GT(writes, 0);

  server_->Kill();
  ASSERT_TRUE(WaitFor([&] { return Metric("weft_controller_connected") == 0; }));
  std::this_thread::sleep_for(1500ms);  // several reconnect attempts fail meanwhile
  EXPECT_EQ(Services(), services);      // never cleared while disconnected
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 200);

  svc_ = std::make_unique<FakeController>();  // a fresh controller process
  svc_->SetSnapshot(Snapshot(5, "b", {kEcho, kWeb}));
  server_ = std::make_unique<FakeServer>(*svc_, ctl_port_, ControllerIdentity());  // the same port
  ASSERT_TRUE(server_->Start());
  auto r = svc_->WaitAck(5, "b", 20s);
  ASSERT_TRUE(r) << "no ACK after the controller came back";
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  ASSERT_EQ(svc_->hellos().size(), 1u);
  EXPECT_EQ(svc_->hellos()[0].applied_version(), 5u);

  EXPECT_TRUE(WaitFor([&] { return Metric("weft_controller_connected") == 1; }));
  EXPECT_EQ(Metric("weft_reconcile_total"), reconciles + 1);
  EXPECT_EQ(Metric("weft_reconcile_map_writes_total"), writes);  // no flapping
  EXPECT_EQ(Metric("weft_reconcile_last_map_writes"), 0);
  EXPECT_EQ(Services(), services);
  EXPECT_EQ(MapIds(), map_ids);
  EXPECT_NE(ReadFile(log_).find("reconnecting with backoff"), std::string::npos);
}

// (e) kill -9 the agent, restart it with --controller: it adopts the pinned
// maps and links (same ids, programs never left the cgroup), resyncs from the
// snapshot with zero writes, and follows later deltas.
TEST_F(ControllerTest, KillNineRestartAdoptsAndResyncs) {
  svc_->SetSnapshot(Snapshot(3, "a", {kEcho, kWeb}));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(3, "a"));
  auto link_ids = LinkIds();
  auto map_ids = MapIds();

  EXPECT_EQ(KillAgent(SIGKILL), 128 + SIGKILL);
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  EXPECT_EQ(Services().size(), 2u);

  svc_->SetSnapshot(Snapshot(3, "b", {kEcho, kWeb}));
  StartAgent();
  auto r = svc_->WaitAck(3, "b");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(LinkIds(), link_ids);
  EXPECT_EQ(MapIds(), map_ids);
  EXPECT_EQ(AttachedPrograms(cgroup_), std::size(kPrograms));
  EXPECT_EQ(Metric("weft_reconcile_map_writes_total"), 0);  // adopted state == snapshot
  EXPECT_NE(ReadFile(log_).find("adopted, program replaced"), std::string::npos);
  auto hellos = svc_->hellos();
  ASSERT_EQ(hellos.size(), 2u);
  EXPECT_EQ(hellos[1].applied_version(), 3u);  // kept in <state-dir>/<node>/applied.json

  svc_->Push(Delta(4, "c", {kDb}));
  r = svc_->WaitAck(4, "c");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Services().size(), 3u);
}

// Versions never go back within one store (issue 9 item 3): a lower version
// of the store the node applied from is NACKed and changes nothing, across
// agent restarts too (before: 999 -> 10 -> 0 were all applied); another
// store is a reset, accepted. The record is 0600 in a 0700 directory.
TEST_F(ControllerTest, VersionsNeverGoBackWithinAStore) {
  svc_->SetSnapshot(Snapshot(999, "a", {kEcho, kWeb}, "store-1"));
  StartAgent();
  auto r = svc_->WaitAck(999, "a");
  ASSERT_TRUE(r && r->has_ack()) << (r ? r->DebugString() : "no reply");
  const auto before = Services();

  svc_->Push(Snapshot(10, "b", {kDb}, "store-1"));
  r = svc_->WaitAck(10, "b");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_nack()) << r->DebugString();
  EXPECT_NE(r->nack().error().find("version 10 of controller store store-1 is older than version 999"),
            std::string::npos)
      << r->nack().error();
  EXPECT_EQ(Services(), before);
  EXPECT_EQ(Metric("weft_config_version"), 999);

  const std::string applied = StateDir() + "/" + kNode + "/applied.json";
  EXPECT_EQ(ReadFile(applied), "{\"store_id\":\"store-1\",\"version\":999}\n");
  struct stat st {};
  ASSERT_EQ(::stat(applied.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((StateDir() + "/" + kNode).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  // A restarted agent remembers (and says so in its hello). It stays
  // unhealthy: it has applied nothing yet (its adopted maps keep working).
  EXPECT_EQ(KillAgent(SIGKILL), 128 + SIGKILL);
  svc_->SetSnapshot(Snapshot(0, "c", {}, "store-1"));
  StartAgent(/*expect_healthy=*/false);
  r = svc_->WaitAck(0, "c");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_nack()) << r->DebugString();
  EXPECT_EQ(Services(), before);
  auto hellos = svc_->hellos();
  ASSERT_EQ(hellos.size(), 2u);
  EXPECT_EQ(hellos[1].applied_version(), 999u);
  EXPECT_EQ(hellos[1].store_id(), "store-1");

  // Another store: a reset, applied and logged.
  svc_->Push(Snapshot(1, "d", {kDb}, "store-2"));
  r = svc_->WaitAck(1, "d");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_ack()) << r->DebugString();
  EXPECT_EQ(Services(), (std::set<std::string>{"10.96.2.3:5432"}));
  EXPECT_NE(ReadFile(log_).find("controller store changed from store-1 (version 999) to store-2 (version 1): a reset"),
            std::string::npos);
  EXPECT_TRUE(WaitFor([&] { return ReadFile(applied) == "{\"store_id\":\"store-2\",\"version\":1}\n"; }));
}

// VIPs outside the agent's ranges (its --service-cidr flags) are NACKed and
// change nothing (before: a VIP anywhere, even a pod's address, was programmed).
TEST_F(ControllerTest, VipsOutsideTheServiceCidrsAreNacked) {
  extra_args_ = {"--service-cidr", "10.96.2.0/24"};
  svc_->SetSnapshot(Snapshot(1, "a", {kEcho, kWeb}));
  StartAgent();
  auto r = svc_->WaitAck(1, "a");
  ASSERT_TRUE(r && r->has_ack()) << (r ? r->DebugString() : "no reply");
  const auto before = Services();
  const double writes = Metric("weft_reconcile_map_writes_total");
  for (const char* vip : {"10.96.3.1", "10.1.0.2", "192.168.7.1"}) {
    SCOPED_TRACE(vip);
    std::string nonce = std::string("n-") + vip;
    svc_->Push(Delta(2, nonce, {Svc("evil", vip, 80, {"10.1.0.66"})}, {}, 1));
    r = svc_->WaitAck(2, nonce);
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->has_nack()) << r->DebugString();
    EXPECT_NE(r->nack().error().find(std::string("service default/evil port tcp: VIP ") + vip +
                                     " is outside this node's VIP ranges (10.96.2.0/24, fd00:96::/112, "
                                     "240.240.0.0/16, 2001:2::/48"),
              std::string::npos)
        << r->nack().error();
    EXPECT_EQ(Services(), before);
  }
  EXPECT_EQ(Metric("weft_reconcile_map_writes_total"), writes);
}

// Item 3 of issue 9: with the controller down, whoever binds its port is not
// obeyed. An impostor with its own self-signed CA (the controller's SPIFFE
// id, even its CA in the chain), or with a certificate from the real CA but
// another identity (a node's key), pushes a version 999 that points a VIP at
// an attacker: the agent refuses the handshake (logged with why, once per
// attempt), the impostor never sees a hello, and the maps keep version 5.
TEST_F(ControllerTest, ImpostorControllerIsNotObeyed) {
  svc_->SetSnapshot(Snapshot(5, "real", {kEcho}));
  StartAgent();
  ASSERT_TRUE(svc_->WaitAck(5, "real"));
  const auto services = Services();
  server_->Kill();
  ASSERT_TRUE(WaitFor([&] { return Metric("weft_controller_connected") == 0; }));

  auto self_signed = pki::CertificateAuthority::CreateRoot(pki::PrivateKey::Generate().value(), kTrustDomain, 24h);
  ASSERT_TRUE(self_signed.ok());
  auto forged = weft::testing::IssueIdentity(*self_signed, pki::ControllerId(kTrustDomain), pki::Usage::kServer);
  forged.chain.push_back(self_signed->certificate());
  forged.bundle = pki::TrustBundle({self_signed->certificate(), ca_->certificate()});  // accepts our node cert
  auto stolen_node = weft::testing::IssueIdentity(*ca_, pki::NodeId(kTrustDomain, "evil"), pki::Usage::kServerAndClient);
  struct Row {
    const char* name;
    credentials::Identity identity;
    const char* why;  // in the agent's log
  };
  const std::vector<Row> rows = {
      {"self-signed impostor", forged, "refused"},
      {"a node's certificate from the real CA", stolen_node, "is spiffe://cluster.local/weft/node/evil, expected "
                                                             "spiffe://cluster.local/weft/controller"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    const size_t log_before = ReadFile(log_).size();
    FakeController evil;
    evil.SetSnapshot(Snapshot(999, "evil", {Svc("echo", "10.96.2.1", 7, {"10.66.6.6"}), kWeb}));
    FakeServer impostor(evil, ctl_port_, row.identity);
    ASSERT_TRUE(impostor.Start());
    // Several reconnect attempts, each refused and logged.
    ASSERT_TRUE(WaitFor(
        [&] {
          std::string log = ReadFile(log_).substr(log_before);
          size_t n = 0;
          for (size_t at = log.find(row.why); at != std::string::npos; at = log.find(row.why, at + 1)) ++n;
          return n >= 2;
        },
        20s))
        << ReadFile(log_).substr(log_before);
    EXPECT_TRUE(evil.hellos().empty()) << "the impostor got a hello";
    EXPECT_FALSE(evil.WaitReply([](const v1::AgentMessage&) { return true; }, 100ms)) << "the agent answered it";
    EXPECT_EQ(Services(), services);
    EXPECT_EQ(Metric("weft_config_version"), 5);
    EXPECT_EQ(Metric("weft_controller_connected"), 0);
    EXPECT_NE(ReadFile(log_).substr(log_before).find("nothing is taken from it"), std::string::npos);
    impostor.Kill();
  }
  // The real controller comes back: obeyed again.
  svc_ = std::make_unique<FakeController>();
  svc_->SetSnapshot(Snapshot(6, "back", {kEcho, kDb}));
  server_ = std::make_unique<FakeServer>(*svc_, ctl_port_, ControllerIdentity());
  ASSERT_TRUE(server_->Start());
  ASSERT_TRUE(svc_->WaitAck(6, "back", 20s));
  EXPECT_EQ(Services().size(), 2u);
}

// Without credentials and without a token the agent says what to do; a
// malformed token file is refused before anything is sent.
TEST_F(ControllerTest, NoCredentialsNoTokenFailsClearly) {
  fs::remove_all(creds_dir_);
  std::string out;
  auto rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", kNode, "--cgroup", cgroup_, "--controller",
                             server_->address(), "--credentials-dir", creds_dir_, "--pin-root", pin_root_,
                             "--metrics", "127.0.0.1:" + std::to_string(port_)},
                            &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 1) << out;
  EXPECT_NE(out.find("no node credentials in " + creds_dir_ + " and no --join-token-file"), std::string::npos) << out;
  const std::string token = tmp_ + "/token";
  ASSERT_TRUE(sys::WriteFileAtomic(token, "not-a-token\n", 0600).ok());
  rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", kNode, "--cgroup", cgroup_, "--controller",
                        server_->address(), "--credentials-dir", creds_dir_, "--join-token-file", token, "--pin-root",
                        pin_root_, "--metrics", "127.0.0.1:" + std::to_string(port_)},
                       &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 1) << out;
  EXPECT_NE(out.find("join token: malformed"), std::string::npos) << out;
  EXPECT_EQ(out.find("not-a-token"), std::string::npos) << "the token's text is echoed: " << out;
  EXPECT_TRUE(svc_->hellos().empty());
}

// The CLI: exactly one of --config / --controller, and a valid address.
TEST(ControllerCli, SourceFlagsAreChecked) {
  if (!fs::exists(WEFT_AGENT_BIN)) GTEST_SKIP() << "no agent binary";
  std::string out;
  auto rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", "x", "--cgroup", "/nonexistent"}, &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_NE(*rc, 0);
  EXPECT_NE(out.find("exactly one of --config FILE or --controller ADDR"), std::string::npos) << out;
  rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", "x", "--cgroup", "/nonexistent", "--config", "/tmp/x.yaml",
                        "--controller", "127.0.0.1:1"},
                       &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_NE(*rc, 0);
  EXPECT_NE(out.find("excludes"), std::string::npos) << out;
  rc = sys::RunCommand({WEFT_AGENT_BIN, "run", "--node", "x", "--cgroup", "/nonexistent", "--controller", "nohost"},
                       &out);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 2);
  EXPECT_NE(out.find("expected host:port or unix:/path"), std::string::npos) << out;
}

}  // namespace
}  // namespace weft
