// In-memory PolicyMapWriter and PolicyLinks for unit tests (the policy twin of
// fake_map_writer.hpp): holds the maps' contents and the links, counts every
// single write (one map element, one link attach or detach, the revision
// bump), runs a check after each, and can fail the n-th.
#pragma once

#include <cerrno>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/policy/map_writer.hpp"

namespace weft::testing {

class FakePolicyWriter : public policy::PolicyMapWriter, public policy::PolicyLinks {
 public:
  policy::KernelPolicy state;
  std::map<uint32_t, bool> links;  // ifindex -> weft_tc_to_pod attached too
  uint32_t revision = 0;
  size_t writes = 0;              // single writes that succeeded
  std::vector<std::string> log;   // one line per call: "UpsertPolicy:3", "Attach 10 to_pod", ...
  // Runs after every single successful write: what a new flow could meet.
  std::function<void()> after_write;

  // The `n`-th single write from now (1 = the next) fails with `err`, once.
  void FailWrite(size_t n, int err = EIO) {
    fail_at_ = writes + n;
    fail_err_ = err;
  }

  Result<policy::KernelPolicy> ReadAll() override { return state; }
  Status UpsertPolicy(const std::vector<std::pair<weft_policy_key, weft_policy_val>>& kv) override {
    return Upsert("UpsertPolicy", kv, state.policy);
  }
  Status DeletePolicy(const std::vector<weft_policy_key>& keys) override {
    return Delete("DeletePolicy", keys, state.policy);
  }
  Status UpsertIdentity(const std::vector<std::pair<weft_ipcache_key, weft_ipcache_val>>& kv) override {
    return Upsert("UpsertIdentity", kv, state.identity);
  }
  Status DeleteIdentity(const std::vector<weft_ipcache_key>& keys) override {
    return Delete("DeleteIdentity", keys, state.identity);
  }
  Status UpsertEndpoints(const std::vector<std::pair<uint32_t, weft_endpoint>>& kv) override {
    return Upsert("UpsertEndpoints", kv, state.endpoints);
  }
  Status DeleteEndpoints(const std::vector<uint32_t>& ifindexes) override {
    return Delete("DeleteEndpoints", ifindexes, state.endpoints);
  }
  Result<uint32_t> BumpRevision() override {
    log.push_back("BumpRevision");
    WEFT_RETURN_IF_ERROR(Write("bump revision"));
    ++revision;
    Wrote();
    return revision;
  }
  Status Attach(uint32_t ifindex, bool to_pod) override {
    log.push_back("Attach " + std::to_string(ifindex) + (to_pod ? " to_pod" : ""));
    WEFT_RETURN_IF_ERROR(Write("attach ifindex " + std::to_string(ifindex)));
    links[ifindex] = to_pod;
    Wrote();
    return Status::Ok();
  }
  Status Detach(uint32_t ifindex) override {
    log.push_back("Detach " + std::to_string(ifindex));
    WEFT_RETURN_IF_ERROR(Write("detach ifindex " + std::to_string(ifindex)));
    links.erase(ifindex);
    Wrote();
    return Status::Ok();
  }

 private:
  // Before a single write: the armed failure, if it is this one.
  Status Write(const std::string& what) {
    if (fail_at_ != 0 && writes + 1 == fail_at_) {
      fail_at_ = 0;
      return Status::Errno("fake " + what, fail_err_);
    }
    return Status::Ok();
  }
  void Wrote() {
    ++writes;
    if (after_write) after_write();
  }
  // Element by element, as the kernel writer: a failure leaves the ones before it written.
  template <typename Kv, typename Map>
  Status Upsert(const std::string& op, const std::vector<Kv>& kv, Map& map) {
    log.push_back(op + ":" + std::to_string(kv.size()));
    for (const auto& [k, v] : kv) {
      WEFT_RETURN_IF_ERROR(Write(op));
      map[k] = v;
      Wrote();
    }
    return Status::Ok();
  }
  template <typename Key, typename Map>
  Status Delete(const std::string& op, const std::vector<Key>& keys, Map& map) {
    log.push_back(op + ":" + std::to_string(keys.size()));
    for (const auto& k : keys) {
      WEFT_RETURN_IF_ERROR(Write(op));
      map.erase(k);
      Wrote();
    }
    return Status::Ok();
  }

  size_t fail_at_ = 0;
  int fail_err_ = EIO;
};

}  // namespace weft::testing
