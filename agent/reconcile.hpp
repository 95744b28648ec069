// Reconciler: makes the kernel's LB maps equal a DesiredState, writing only the
// difference, in an order that keeps every intermediate state consistent for a
// connecting socket:
//   0) reset the counters of newly allocated ids   1) upsert new backends
//   2) upsert new-generation slots                  3) upsert service entries (the flip)
//   4) delete removed services                      5) delete old-generation slots
//   6) delete backends no longer referenced.
// It keeps a mirror of the maps (read back by Adopt) from which it derives id
// allocation: service ids and backend ids are dense from 1 and reused after
// being freed, never within the Apply that frees them.
//
// Incremental: after a successful Apply the Reconciler remembers the desired
// entry of every service it wrote, the backend ids each one references and
// the id of every backend address. The next Apply compares the new desired
// state with that record (entry by entry, no slot building) and plans, builds
// slots for and writes only the services whose entry changed, appeared or
// went away; backends are deleted when their last referencing service lets
// go. The first Apply after Adopt() (start-up, or recovery after a failed
// write) takes the full path: the whole desired state against the whole live
// mirror, still writing only the difference.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "agent/datapath/map_state.hpp"
#include "agent/lb/desired_state.hpp"
#include "weft/bpf_abi.h"
#include "weft/status.hpp"

namespace weft::agent {

// Map capacities. Ids index the per-CPU stats arrays, so ids run 1..max-1.
struct ReconcileLimits {
  uint32_t max_services = WEFT_DEFAULT_MAX_SERVICES;
  uint32_t max_backends = WEFT_DEFAULT_MAX_BACKENDS;
  uint32_t max_slots = WEFT_DEFAULT_MAX_SLOTS;
};

struct MapWrites {
  size_t upserted = 0;
  size_t deleted = 0;
};

struct ReconcileStats {
  MapWrites services;
  MapWrites backends;
  MapWrites slots;
  size_t service_stats_reset = 0;
  size_t backend_stats_reset = 0;
  size_t services_changed = 0;  // added, removed, or given new slots, algorithm or flags
  bool incremental = false;     // planned from the record of the last Apply (see above)

  // Entries upserted or deleted in all three maps.
  size_t entries_written() const;
};

class Reconciler {
 public:
  explicit Reconciler(datapath::MapWriter& writer, ReconcileLimits limits = {});

  // Reads the live maps so a restarted agent continues from them without
  // rewriting unchanged entries. Apply calls it first if it has not run, or if
  // a previous Apply failed part-way.
  Status Adopt();

  // Makes the maps equal `desired`. Errors found before writing (limits,
  // invalid table sizes) write nothing; a failed map write names the step, and
  // the next Apply converges from what the kernel then holds.
  Result<ReconcileStats> Apply(const lb::DesiredState& desired);

 private:
  using BackendAddr = std::pair<std::array<uint8_t, 16>, uint16_t>;  // address, port (network order)
  // What the last successful Apply left, valid only while it matches live_.
  struct Record {
    std::map<weft_svc_key, lb::ServiceEntry, lb::ServiceKeyLess> entries;           // as applied
    std::map<weft_svc_key, std::vector<uint32_t>, lb::ServiceKeyLess> backends_of;  // distinct ids in its slots
    std::map<uint32_t, uint32_t> refs;                                              // backend id -> services using it
    std::map<BackendAddr, uint32_t> id_of;                                          // live backends by address
    std::set<uint32_t> service_ids;                                                  // ids of live services
    // No free id below these (ids are dense from 1: allocation starts here).
    uint32_t backend_hint = 1;
    uint32_t service_hint = 1;
  };
  Result<ReconcileStats> ApplyFull(const lb::DesiredState& desired);
  Result<ReconcileStats> ApplyIncremental(const lb::DesiredState& desired);
  // Builds record_ from `desired` and live_ (after a successful full Apply).
  void Remember(const lb::DesiredState& desired);

  datapath::MapWriter& writer_;
  ReconcileLimits limits_;
  datapath::MapState live_;  // what the kernel holds, as far as known
  bool adopted_ = false;
  std::optional<Record> record_;
};

}  // namespace weft::agent
