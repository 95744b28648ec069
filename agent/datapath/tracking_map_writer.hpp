// A MapWriter decorator that keeps a view of what the kernel maps hold as the
// writes pass through it: the services (key -> id), the backends (id ->
// address) and the number of slots. The agent publishes this view to /metrics
// (entries per map, label values for the per-id counters) without scanning
// the kernel maps on every scrape. ReadAll (the Reconciler's Adopt) resets it
// from the kernel, so a failed, partly applied write is corrected by the next
// adoption.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_set>

#include "agent/datapath/map_state.hpp"

namespace weft::datapath {

struct MapView {
  std::map<weft_svc_key, weft_svc_val, BytesLess<weft_svc_key>> services;
  std::map<uint32_t, weft_backend> backends;
  size_t slots = 0;
};

class TrackingMapWriter : public MapWriter {
 public:
  explicit TrackingMapWriter(MapWriter& inner) : inner_(inner) {}

  // Not thread-safe: call from the thread that writes (copy it out to share).
  MapView View() const { return MapView{services_, backends_, slots_.size()}; }

  Result<MapState> ReadAll() override;
  Status UpsertServices(const std::vector<std::pair<weft_svc_key, weft_svc_val>>& kv) override;
  Status DeleteServices(const std::vector<weft_svc_key>& keys) override;
  Status UpsertBackends(const std::vector<std::pair<uint32_t, weft_backend>>& kv) override;
  Status DeleteBackends(const std::vector<uint32_t>& ids) override;
  Status UpsertSlots(const std::vector<std::pair<weft_slot_key, uint32_t>>& kv) override;
  Status DeleteSlots(const std::vector<weft_slot_key>& keys) override;
  Status ResetServiceStats(const std::vector<uint32_t>& svc_ids) override { return inner_.ResetServiceStats(svc_ids); }
  Status ResetBackendStats(const std::vector<uint32_t>& ids) override { return inner_.ResetBackendStats(ids); }

 private:
  static uint64_t Pack(const weft_slot_key& k) {
    return (uint64_t{k.svc_id} << 32) | (uint64_t{k.gen} << 16) | k.slot;
  }

  MapWriter& inner_;
  std::map<weft_svc_key, weft_svc_val, BytesLess<weft_svc_key>> services_;
  std::map<uint32_t, weft_backend> backends_;
  std::unordered_set<uint64_t> slots_;
};

}  // namespace weft::datapath
