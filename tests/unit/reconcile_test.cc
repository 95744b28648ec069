// Reconciler against the in-memory FakeMapWriter: minimal writes, safe order,
// adoption after restart, id reuse, failure recovery.
#include "agent/reconcile.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <random>
#include <set>

#include "agent/lb/maglev.hpp"
#include "agent/lb/random_slots.hpp"
#include "tests/unit/fake_map_writer.hpp"

namespace weft::agent {
namespace {

using datapath::MapState;
using testing::FakeMapWriter;

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }
weft_svc_key Key(const char* vip, uint16_t port = 80) { return lb::MakeServiceKey(Ip(vip), port, IPPROTO_TCP); }
lb::Backend Be(const char* ip, uint16_t port = 8080, uint32_t weight = 1) { return {Ip(ip), port, weight}; }

lb::ServiceEntry Svc(std::vector<lb::Backend> backends, weft_lb_algo algo = WEFT_LB_RANDOM) {
  lb::ServiceEntry e;
  e.name = "test";
  e.algo = algo;
  e.maglev_table_size = 251;
  e.backends = std::move(backends);
  std::sort(e.backends.begin(), e.backends.end());
  return e;
}

lb::DesiredState State(std::vector<std::pair<weft_svc_key, lb::ServiceEntry>> services) {
  lb::DesiredState s;
  for (auto& [k, v] : services) s.services.emplace(k, std::move(v));
  return s;
}

std::string BackendName(const weft_backend& be) {
  return lb::Backend{IpAddr::FromBytes(be.addr), ntohs(be.port), 1}.StableName();
}

// What a socket connecting to `key` can reach: the backend of each slot in force.
// Fails the test if a slot or backend is missing.
std::vector<std::string> Resolve(const MapState& m, const weft_svc_key& key) {
  std::vector<std::string> out;
  const weft_svc_val& val = m.services.at(key);
  for (uint16_t i = 0; i < val.slot_count; ++i) {
    auto slot = m.slots.find(weft_slot_key{val.svc_id, val.gen, i});
    if (slot == m.slots.end()) {
      ADD_FAILURE() << "svc " << val.svc_id << " gen " << val.gen << ": slot " << i << " missing";
      return out;
    }
    auto be = m.backends.find(slot->second);
    if (be == m.backends.end()) {
      ADD_FAILURE() << "slot " << i << " -> missing backend " << slot->second;
      return out;
    }
    out.push_back(BackendName(be->second));
  }
  return out;
}

// The same, computed independently from the desired entry.
std::vector<std::string> Expected(const lb::ServiceEntry& e) {
  std::vector<lb::WeightedBackend> wb;
  for (uint32_t i = 0; i < e.backends.size(); ++i) wb.push_back({e.backends[i].StableName(), i, e.backends[i].weight});
  auto ids = e.algo == WEFT_LB_MAGLEV ? lb::BuildMaglevTable(wb, e.maglev_table_size) : lb::BuildRandomSlots(wb);
  std::vector<std::string> out;
  for (uint32_t id : ids) out.push_back(wb[id].name);
  return out;
}

// Every service entry points at complete slots and live backends.
void ExpectServable(const MapState& m) {
  for (const auto& kv : m.services) Resolve(m, kv.first);
}

// The maps hold exactly `d`: nothing missing, nothing stale.
void ExpectConverged(const MapState& m, const lb::DesiredState& d) {
  ASSERT_EQ(m.services.size(), d.services.size());
  size_t slots = 0;
  std::set<uint32_t> referenced;
  for (const auto& [key, entry] : d.services) {
    ASSERT_TRUE(m.services.count(key));
    const weft_svc_val& val = m.services.at(key);
    EXPECT_EQ(val.algo, entry.algo);
    EXPECT_EQ(val.flags, entry.flags);
    EXPECT_EQ(Resolve(m, key), Expected(entry)) << entry.name;
    slots += val.slot_count;
    for (uint16_t i = 0; i < val.slot_count; ++i) referenced.insert(m.slots.at({val.svc_id, val.gen, i}));
  }
  EXPECT_EQ(m.slots.size(), slots) << "stale slots";
  EXPECT_EQ(m.backends.size(), referenced.size()) << "stale backends";
}

class ReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_.after_write = [](const MapState& m) { ExpectServable(m); };
  }
  ReconcileStats MustApply(Reconciler& r, const lb::DesiredState& d) {
    auto stats = r.Apply(d);
    EXPECT_TRUE(stats.ok()) << stats.status().message();
    if (stats.ok()) ExpectConverged(fake_.state, d);
    return stats.ok() ? *stats : ReconcileStats{};
  }
  FakeMapWriter fake_;
};

const lb::DesiredState kTwoServices = State({
    {Key("10.96.0.1"), Svc({Be("10.0.0.1"), Be("10.0.0.2"), Be("10.0.0.3", 8080, 2)})},
    {Key("10.96.0.2"), Svc({Be("10.0.0.3"), Be("10.0.0.4")}, WEFT_LB_MAGLEV)},
});

TEST_F(ReconcileTest, FirstApplyWritesEverything) {
  Reconciler r(fake_);
  ReconcileStats s = MustApply(r, kTwoServices);
  EXPECT_EQ(s.backends.upserted, 4u) << "10.0.0.3:8080 is shared";
  EXPECT_EQ(s.slots.upserted, 4u + 251u);
  EXPECT_EQ(s.services.upserted, 2u);
  EXPECT_EQ(s.services.deleted + s.slots.deleted + s.backends.deleted, 0u);
  EXPECT_EQ(s.services_changed, 2u);
  EXPECT_EQ(fake_.service_stats_resets, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(fake_.backend_stats_resets, (std::vector<uint32_t>{1, 2, 3, 4}));
}

TEST_F(ReconcileTest, IdenticalApplyWritesNothing) {
  Reconciler r(fake_);
  MustApply(r, kTwoServices);
  size_t calls = fake_.log.size();
  ReconcileStats s = MustApply(r, kTwoServices);
  EXPECT_EQ(s.entries_written(), 0u);
  EXPECT_EQ(s.services_changed, 0u);
  EXPECT_EQ(fake_.log.size(), calls) << "no map call at all";
}

TEST_F(ReconcileTest, ChangeTouchesOnlyThatService) {
  Reconciler r(fake_);
  MustApply(r, kTwoServices);
  const weft_svc_val maglev_before = fake_.state.services.at(Key("10.96.0.2"));
  const weft_svc_val random_before = fake_.state.services.at(Key("10.96.0.1"));
  auto changed = kTwoServices;
  changed.services.at(Key("10.96.0.1")).backends[0].weight = 3;
  fake_.log.clear();
  ReconcileStats s = MustApply(r, changed);
  EXPECT_EQ(s.services_changed, 1u);
  EXPECT_EQ(s.services.upserted, 1u);
  EXPECT_EQ(s.backends.upserted + s.backends.deleted, 0u);
  EXPECT_TRUE(datapath::BytesEqual(fake_.state.services.at(Key("10.96.0.2")), maglev_before));
  const weft_svc_val& after = fake_.state.services.at(Key("10.96.0.1"));
  EXPECT_EQ(after.svc_id, random_before.svc_id);
  EXPECT_EQ(after.gen, random_before.gen + 1);
  EXPECT_EQ(s.slots.upserted, after.slot_count);
  EXPECT_EQ(s.slots.deleted, random_before.slot_count);
}

TEST_F(ReconcileTest, RemovedBackendIsUnreferencedAndDeleted) {
  Reconciler r(fake_);
  MustApply(r, kTwoServices);
  uint32_t gone_id = 0;
  for (const auto& [id, be] : fake_.state.backends) {
    if (BackendName(be) == "10.0.0.1:8080") gone_id = id;
  }
  ASSERT_NE(gone_id, 0u);
  auto removed = kTwoServices;
  auto& backends = removed.services.at(Key("10.96.0.1")).backends;
  backends.erase(backends.begin());
  ReconcileStats s = MustApply(r, removed);
  EXPECT_EQ(s.backends.deleted, 1u);
  EXPECT_FALSE(fake_.state.backends.count(gone_id));
  for (const auto& kv : fake_.state.slots) EXPECT_NE(kv.second, gone_id);
}

TEST_F(ReconcileTest, StepOrder) {
  Reconciler r(fake_);
  MustApply(r, kTwoServices);
  const uint16_t old_gen = fake_.state.services.at(Key("10.96.0.1")).gen;
  // Change one service, remove the other, add a third: every step runs.
  auto next = State({
      {Key("10.96.0.1"), Svc({Be("10.0.0.1"), Be("10.0.0.5")})},
      {Key("10.96.0.3"), Svc({Be("10.0.0.6")})},
  });
  fake_.log.clear();
  MustApply(r, next);
  EXPECT_EQ(fake_.Ops(), (std::vector<std::string>{"ResetBackendStats:2", "ResetServiceStats:1", "UpsertBackends:2",
                                                   "UpsertSlots:3", "UpsertServices:2", "DeleteServices:1",
                                                   "DeleteSlots:255", "DeleteBackends:3"}));
  const weft_svc_val& val = fake_.state.services.at(Key("10.96.0.1"));
  EXPECT_EQ(val.gen, static_cast<uint16_t>(old_gen + 1));
  for (const auto& kv : fake_.state.slots) EXPECT_FALSE(kv.first.gen == old_gen && kv.first.svc_id == val.svc_id);
}

TEST_F(ReconcileTest, AdoptContinuesWithoutWrites) {
  {
    Reconciler first(fake_);
    MustApply(first, kTwoServices);
  }
  MapState before = fake_.state;
  fake_.log.clear();
  Reconciler restarted(fake_);
  ASSERT_TRUE(restarted.Adopt().ok());
  ReconcileStats s = MustApply(restarted, kTwoServices);
  EXPECT_EQ(s.entries_written(), 0u);
  EXPECT_EQ(fake_.Ops(), (std::vector<std::string>{"ReadAll:0"}));
  // New objects continue the id sequences.
  auto more = kTwoServices;
  more.services.emplace(Key("10.96.0.9"), Svc({Be("10.0.0.9")}));
  MustApply(restarted, more);
  EXPECT_EQ(fake_.state.services.at(Key("10.96.0.9")).svc_id, 3u);
  EXPECT_EQ(fake_.backend_stats_resets.back(), 5u);
}

TEST_F(ReconcileTest, AdoptHandBuiltStateAndGenerationWraps) {
  // A service at gen 65535 with one slot to backend 7, as another agent left it.
  weft_svc_val val{};
  val.svc_id = 4;
  val.gen = 65535;
  val.slot_count = 1;
  fake_.state.services[Key("10.96.0.1")] = val;
  fake_.state.slots[{4, 65535, 0}] = 7;
  weft_backend be{};
  Ip("10.0.0.1").CopyTo(be.addr);
  be.port = htons(8080);
  fake_.state.backends[7] = be;
  Reconciler r(fake_);
  EXPECT_EQ(MustApply(r, State({{Key("10.96.0.1"), Svc({Be("10.0.0.1")})}})).entries_written(), 0u);
  MustApply(r, State({{Key("10.96.0.1"), Svc({Be("10.0.0.1"), Be("10.0.0.2")})}}));
  EXPECT_EQ(fake_.state.services.at(Key("10.96.0.1")).gen, 0);
  EXPECT_EQ(fake_.state.backends.count(7), 1u) << "existing backend id kept";
}

TEST_F(ReconcileTest, StaleEntriesFromACrashAreCleanedUp) {
  Reconciler first(fake_);
  MustApply(first, kTwoServices);
  fake_.state.slots[{9, 3, 0}] = 1;  // slots of no service
  weft_backend stray{};
  fake_.state.backends[42] = stray;  // backend of no slot
  Reconciler r(fake_);
  ReconcileStats s = MustApply(r, kTwoServices);
  EXPECT_EQ(s.slots.deleted, 1u);
  EXPECT_EQ(s.backends.deleted, 1u);
}

TEST_F(ReconcileTest, IdsReusedAfterFreeWithStatsReset) {
  Reconciler r(fake_);
  auto a = std::make_pair(Key("10.96.0.1"), Svc({Be("10.0.0.1")}));
  auto b = std::make_pair(Key("10.96.0.2"), Svc({Be("10.0.0.2")}));
  auto c = std::make_pair(Key("10.96.0.3"), Svc({Be("10.0.0.3")}));
  MustApply(r, State({a, b}));
  // Removing a and adding c in one Apply: a's ids are still in use until its
  // slots are gone, so c gets fresh ones.
  MustApply(r, State({b, c}));
  EXPECT_EQ(fake_.state.services.at(c.first).svc_id, 3u);
  EXPECT_EQ(fake_.state.backends.count(1), 0u);
  // Now ids 1 are free and reused, with their counters reset.
  auto d = std::make_pair(Key("10.96.0.4"), Svc({Be("10.0.0.4")}));
  MustApply(r, State({b, c, d}));
  EXPECT_EQ(fake_.state.services.at(d.first).svc_id, 1u);
  EXPECT_EQ(fake_.service_stats_resets, (std::vector<uint32_t>{1, 2, 3, 1}));
  EXPECT_EQ(fake_.backend_stats_resets, (std::vector<uint32_t>{1, 2, 3, 1}));
  EXPECT_EQ(BackendName(fake_.state.backends.at(1)), "10.0.0.4:8080");
}

TEST_F(ReconcileTest, NoBackendsMeansEmptyServiceEntry) {
  Reconciler r(fake_);
  MustApply(r, kTwoServices);
  auto empty = kTwoServices;
  empty.services.at(Key("10.96.0.2")).backends.clear();
  MustApply(r, empty);
  const weft_svc_val& val = fake_.state.services.at(Key("10.96.0.2"));
  EXPECT_EQ(val.slot_count, 0);
  for (const auto& kv : fake_.state.slots) EXPECT_NE(kv.first.svc_id, val.svc_id);
}

TEST_F(ReconcileTest, FlagsOnlyChangeRewritesOnlyTheServiceEntry) {
  Reconciler r(fake_);
  MustApply(r, kTwoServices);
  auto flagged = kTwoServices;
  flagged.services.at(Key("10.96.0.1")).flags = WEFT_SVC_F_STEER_PROXY;
  fake_.log.clear();
  ReconcileStats s = MustApply(r, flagged);
  EXPECT_EQ(fake_.Ops(), (std::vector<std::string>{"UpsertServices:1"}));
  EXPECT_EQ(s.services_changed, 1u);
}

TEST_F(ReconcileTest, DualStack) {
  Reconciler r(fake_);
  auto d = State({
      {Key("10.96.0.1"), Svc({Be("10.0.0.1"), Be("10.0.0.2")})},
      {Key("fd00:96::1"), Svc({Be("fd00::1"), Be("fd00::2")}, WEFT_LB_MAGLEV)},
  });
  MustApply(r, d);
  EXPECT_EQ(Resolve(fake_.state, Key("10.96.0.1")), (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080"}));
  for (const auto& name : Resolve(fake_.state, Key("fd00:96::1"))) EXPECT_EQ(name.front(), '[');
}

TEST_F(ReconcileTest, LimitsRejectBeforeWriting) {
  struct Row {
    const char* what;
    ReconcileLimits limits;
    const char* error;
  };
  const Row rows[] = {
      {"services", {2, 100, 1000}, "service ids exhausted: more than 1 services"},
      {"backends", {100, 4, 1000}, "backend ids exhausted: more than 3 distinct backends"},
      {"slots", {100, 100, 200}, "slots exhausted: the update needs 255 slot entries, the map holds 200"},
  };
  for (const auto& row : rows) {
    FakeMapWriter fake;
    Reconciler r(fake, row.limits);
    auto s = r.Apply(kTwoServices);
    ASSERT_FALSE(s.ok()) << row.what;
    EXPECT_NE(s.status().message().find(row.error), std::string::npos) << s.status().message();
    EXPECT_EQ(fake.Ops(), (std::vector<std::string>{"ReadAll:0"})) << row.what << ": nothing written";
  }
}

TEST_F(ReconcileTest, InvalidEntriesRejectedBeforeWriting) {
  auto bad_size = kTwoServices;
  bad_size.services.at(Key("10.96.0.2")).maglev_table_size = 250;
  std::vector<lb::Backend> many;
  for (int i = 0; i <= WEFT_MAX_RANDOM_SLOTS; ++i) {
    many.push_back({IpAddr::FromV4(htonl(0x0a000000 + i)), 80, 1});
  }
  auto too_many = State({{Key("10.96.0.1"), Svc(many)}});
  struct Row {
    const lb::DesiredState* state;
    const char* error;
  };
  const Row rows[] = {
      {&bad_size, "reconcile: service test (10.96.0.2:80/TCP): Maglev table size 250 is not a prime"},
      {&too_many, "4097 backends exceed the 4096 random slots; use Maglev"},
  };
  for (const auto& row : rows) {
    FakeMapWriter fake;
    Reconciler r(fake);
    auto s = r.Apply(*row.state);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find(row.error), std::string::npos) << s.status().message();
    EXPECT_EQ(fake.state.services.size() + fake.state.slots.size() + fake.state.backends.size(), 0u);
  }
}

TEST_F(ReconcileTest, FailureAnywhereThenConverges) {
  const auto next = State({
      {Key("10.96.0.1"), Svc({Be("10.0.0.1"), Be("10.0.0.5")})},
      {Key("10.96.0.3"), Svc({Be("10.0.0.6")}, WEFT_LB_MAGLEV)},
  });
  struct Row {
    const char* op;
    const char* step;
  };
  const Row rows[] = {
      {"ReadAll", "reconcile: adopt live maps: fake ReadAll"},
      {"ResetBackendStats", "reconcile: reset backend stats: fake ResetBackendStats"},
      {"ResetServiceStats", "reconcile: reset service stats"},
      {"UpsertBackends", "reconcile: upsert backends: fake UpsertBackends: Input/output error"},
      {"UpsertSlots", "reconcile: upsert slots"},
      {"UpsertServices", "reconcile: upsert services"},
      {"DeleteServices", "reconcile: delete services"},
      {"DeleteSlots", "reconcile: delete slots"},
      {"DeleteBackends", "reconcile: delete backends"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.op);
    FakeMapWriter fake;
    fake.after_write = [](const MapState& m) { ExpectServable(m); };
    {
      Reconciler r(fake);
      ASSERT_TRUE(r.Apply(kTwoServices).ok());
    }
    Reconciler r(fake);
    fake.FailNext(row.op);
    auto failed = r.Apply(next);
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.status().message().find(row.step), std::string::npos) << failed.status().message();
    ExpectServable(fake.state);
    auto retried = r.Apply(next);
    ASSERT_TRUE(retried.ok()) << retried.status().message();
    ExpectConverged(fake.state, next);
    auto again = r.Apply(next);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->entries_written(), 0u);
  }
}

// The same failure table, but the failing Apply is an incremental one (same
// Reconciler as the good Apply before it): the record must be dropped and the
// next Apply must converge from what the kernel holds.
TEST_F(ReconcileTest, FailureInIncrementalApplyThenConverges) {
  const auto next = State({
      {Key("10.96.0.1"), Svc({Be("10.0.0.1"), Be("10.0.0.5")})},
      {Key("10.96.0.3"), Svc({Be("10.0.0.6")}, WEFT_LB_MAGLEV)},
  });
  for (const char* op : {"ResetBackendStats", "ResetServiceStats", "UpsertBackends", "UpsertSlots", "UpsertServices",
                         "DeleteServices", "DeleteSlots", "DeleteBackends"}) {
    SCOPED_TRACE(op);
    FakeMapWriter fake;
    fake.after_write = [](const MapState& m) { ExpectServable(m); };
    Reconciler r(fake);
    ASSERT_TRUE(r.Apply(kTwoServices).ok());
    fake.FailNext(op);
    auto failed = r.Apply(next);
    ASSERT_FALSE(failed.ok());
    ExpectServable(fake.state);
    auto retried = r.Apply(next);
    ASSERT_TRUE(retried.ok()) << retried.status().message();
    EXPECT_FALSE(retried->incremental) << "after a failed write the maps are read again";
    ExpectConverged(fake.state, next);
    auto again = r.Apply(next);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->incremental);
    EXPECT_EQ(again->entries_written(), 0u);
  }
}

// 300 services; one gets a backend more: only that service's keys are
// written, and no map is read again.
TEST_F(ReconcileTest, IncrementalApplyWritesOnlyTheChangedService) {
  lb::DesiredState big;
  for (int i = 0; i < 300; ++i) {
    std::vector<lb::Backend> bes;
    for (int j = 0; j < 3; ++j) bes.push_back({IpAddr::FromV4(htonl(0x0a010000 + i * 4 + j)), 8080, 1});
    big.services.emplace(lb::MakeServiceKey(IpAddr::FromV4(htonl(0x0a600000 + i)), 80, IPPROTO_TCP),
                         Svc(bes, i % 2 ? WEFT_LB_MAGLEV : WEFT_LB_RANDOM));
  }
  Reconciler r(fake_);
  ReconcileStats first = MustApply(r, big);
  EXPECT_FALSE(first.incremental);
  // Service 8 uses random slots: one slot per backend.
  const weft_svc_key key = lb::MakeServiceKey(IpAddr::FromV4(htonl(0x0a600000 + 8)), 80, IPPROTO_TCP);
  const weft_svc_val before = fake_.state.services.at(key);
  auto next = big;
  next.services.at(key).backends.push_back({IpAddr::FromV4(htonl(0x0b000001)), 8080, 1});
  fake_.log.clear();
  ReconcileStats s = MustApply(r, next);
  EXPECT_TRUE(s.incremental);
  const weft_svc_val after = fake_.state.services.at(key);
  EXPECT_EQ(after.svc_id, before.svc_id);
  EXPECT_EQ(after.gen, before.gen + 1);
  // One new backend, the new generation (4 slots), the flip, the old generation (3 slots).
  EXPECT_EQ(fake_.Ops(), (std::vector<std::string>{"ResetBackendStats:1", "UpsertBackends:1", "UpsertSlots:4",
                                                   "UpsertServices:1", "DeleteSlots:3"}));
  EXPECT_EQ(s.services_changed, 1u);
  // And back: the extra backend goes away with its last user.
  fake_.log.clear();
  s = MustApply(r, big);
  EXPECT_EQ(fake_.Ops(),
            (std::vector<std::string>{"UpsertSlots:3", "UpsertServices:1", "DeleteSlots:4", "DeleteBackends:1"}));
}

// Random walks over desired states with shared backends, both algorithms,
// added and removed services: after every incremental Apply the maps hold
// exactly the desired state, and a fresh Reconciler (the full path) adopting
// them finds nothing to write.
TEST_F(ReconcileTest, IncrementalMatchesFullPathOnRandomChanges) {
  std::mt19937 rng(42);
  auto random_state = [&](const lb::DesiredState& prev) {
    lb::DesiredState d = prev;
    int changes = 1 + static_cast<int>(rng() % 4);
    for (int c = 0; c < changes; ++c) {
      auto key = lb::MakeServiceKey(IpAddr::FromV4(htonl(0x0a600000 + rng() % 12)), 80, IPPROTO_TCP);
      if (rng() % 4 == 0) {
        d.services.erase(key);
        continue;
      }
      std::vector<lb::Backend> bes;
      int n = static_cast<int>(rng() % 6);
      for (int j = 0; j < n; ++j)  // 10 addresses shared by all services
        bes.push_back({IpAddr::FromV4(htonl(0x0a010000 + rng() % 10)), 8080, 1 + static_cast<uint32_t>(rng() % 3)});
      std::sort(bes.begin(), bes.end());
      bes.erase(std::unique(bes.begin(), bes.end(),
                            [](const lb::Backend& a, const lb::Backend& b) { return a.addr == b.addr; }),
                bes.end());
      d.services[key] = Svc(bes, rng() % 2 ? WEFT_LB_MAGLEV : WEFT_LB_RANDOM);
      if (rng() % 5 == 0) d.services[key].flags = WEFT_SVC_F_STEER_PROXY;
    }
    return d;
  };
  Reconciler r(fake_);
  lb::DesiredState d;
  size_t incremental = 0;
  for (int step = 0; step < 300; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    d = random_state(d);
    ReconcileStats s = MustApply(r, d);
    incremental += s.incremental;
    if (HasFailure()) return;
    FakeMapWriter copy;
    copy.state = fake_.state;
    Reconciler fresh(copy);
    auto again = fresh.Apply(d);
    ASSERT_TRUE(again.ok()) << again.status().message();
    ASSERT_EQ(again->entries_written(), 0u) << "the incremental result is not what the full path wants";
  }
  EXPECT_EQ(incremental, 299u);
}

}  // namespace
}  // namespace weft::agent
