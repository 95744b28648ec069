// An in-memory MapWriter for unit tests: holds a MapState, logs every call in
// order, and can fail the n-th call of a given operation.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/datapath/map_state.hpp"

namespace weft::testing {

class FakeMapWriter : public datapath::MapWriter {
 public:
  struct Call {
    std::string op;  // "UpsertSlots", ...
    size_t count;    // elements in the call
  };

  datapath::MapState state;
  std::vector<Call> log;
  std::vector<uint32_t> service_stats_resets;  // ids, in reset order
  std::vector<uint32_t> backend_stats_resets;
  // Runs after every successful map write: what a connecting socket could see.
  std::function<void(const datapath::MapState&)> after_write;

  // The next `op` call (after `skip` successful ones) fails with `err`, once.
  void FailNext(const std::string& op, int err = EIO, int skip = 0) { failures_[op] = {skip, err}; }

  // The log as "op:count" strings, e.g. {"UpsertBackends:2", "UpsertSlots:4"}.
  std::vector<std::string> Ops() const {
    std::vector<std::string> out;
    for (const auto& c : log) out.push_back(c.op + ":" + std::to_string(c.count));
    return out;
  }

  Result<datapath::MapState> ReadAll() override {
    if (Status st = Check("ReadAll", 0); !st.ok()) return st;
    return state;
  }
  Status UpsertServices(const std::vector<std::pair<weft_svc_key, weft_svc_val>>& kv) override {
    return Upsert("UpsertServices", kv, state.services);
  }
  Status DeleteServices(const std::vector<weft_svc_key>& keys) override {
    return Delete("DeleteServices", keys, state.services);
  }
  Status UpsertBackends(const std::vector<std::pair<uint32_t, weft_backend>>& kv) override {
    return Upsert("UpsertBackends", kv, state.backends);
  }
  Status DeleteBackends(const std::vector<uint32_t>& ids) override {
    return Delete("DeleteBackends", ids, state.backends);
  }
  Status UpsertSlots(const std::vector<std::pair<weft_slot_key, uint32_t>>& kv) override {
    return Upsert("UpsertSlots", kv, state.slots);
  }
  Status DeleteSlots(const std::vector<weft_slot_key>& keys) override {
    return Delete("DeleteSlots", keys, state.slots);
  }
  Status ResetServiceStats(const std::vector<uint32_t>& ids) override {
    WEFT_RETURN_IF_ERROR(Check("ResetServiceStats", ids.size()));
    service_stats_resets.insert(service_stats_resets.end(), ids.begin(), ids.end());
    return Status::Ok();
  }
  Status ResetBackendStats(const std::vector<uint32_t>& ids) override {
    WEFT_RETURN_IF_ERROR(Check("ResetBackendStats", ids.size()));
    backend_stats_resets.insert(backend_stats_resets.end(), ids.begin(), ids.end());
    return Status::Ok();
  }

 private:
  struct Failure {
    int skip;
    int err;
  };

  Status Check(const std::string& op, size_t count) {
    auto it = failures_.find(op);
    if (it != failures_.end()) {
      if (it->second.skip-- == 0) {
        int err = it->second.err;
        failures_.erase(it);
        return Status::Errno("fake " + op, err);
      }
    }
    log.push_back({op, count});
    return Status::Ok();
  }
  template <typename Kv, typename Map>
  Status Upsert(const std::string& op, const std::vector<Kv>& kv, Map& map) {
    WEFT_RETURN_IF_ERROR(Check(op, kv.size()));
    for (const auto& [k, v] : kv) map[k] = v;
    if (after_write) after_write(state);
    return Status::Ok();
  }
  template <typename Key, typename Map>
  Status Delete(const std::string& op, const std::vector<Key>& keys, Map& map) {
    for (const auto& k : keys) {  // all or nothing, like the kernel writer
      if (map.count(k) == 0) return Status::Errno("fake " + op + ": key not found", ENOENT);
    }
    WEFT_RETURN_IF_ERROR(Check(op, keys.size()));
    for (const auto& k : keys) map.erase(k);
    if (after_write) after_write(state);
    return Status::Ok();
  }

  std::map<std::string, Failure> failures_;
};

}  // namespace weft::testing
