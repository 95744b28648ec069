// The ABI version of a node's pins, and the in-place migration from an older
// one (include/weft/bpf_abi.h, WEFT_ABI_VERSION).
//
// The version lives in the pinned weft_meta map (R/N/maps/weft_meta); pins
// without it are ABI 1 (before weft_meta existed). A loader adopts pinned maps
// only of its own version, or of an older one it can migrate from; a newer
// version is refused (a downgrade across an ABI change needs `weft-agent
// cleanup`), and so is an older one this build has no migration from. Shapes
// (type, key/value size, flags, capacity) are still checked map by map
// (PrepareMapsForPins): the version catches what has the right shape but
// another meaning.
//
// An upgrade across an ABI change, with no window (each loader, per object):
//   1 Prepare (before load): a map the step changes, whose pin still has the
//     old layout, gets a staging pin path (R/N/maps/<name>_abi<new>: libbpf
//     creates and pins the new layout there); every other map is adopted as
//     always. weft_meta is created unpinned until stamped.
//   2 Fill (after load): the staged maps are filled from the old ones (the
//     old programs, still attached, keep using the old maps meanwhile).
//   3 the loader swaps its links to the new programs (BPF_LINK_UPDATE: the
//     same links, atomically) and re-pins the programs;
//   4 Finish: counters the old programs added since the fill are carried
//     over, then each staging pin is renamed over the old pin (so the old
//     pins go last, and a reader of the pins always finds a whole map).
//   5 StampAbi (the policy datapath, loaded and attached last by the agent):
//     weft_meta says WEFT_ABI_VERSION.
// A crash anywhere leaves pins a new agent migrates again: until the stamp,
// the node still reads as the old version; a map already renamed has the new
// layout and is then simply adopted; a staging pin left behind is replaced.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weft/node/abi.hpp"
#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

struct bpf_object;
struct bpf_map;

namespace weft::datapath {

// The record itself (weft_meta) is part of the node-local contract: weft/node/abi.hpp.
using node::PinnedAbi;
using node::ReadPinnedAbi;

// One map's migration in an ABI step (abi.cc has the table).
struct MapMigration;

class AbiMigration {
 public:
  // Before loading `obj` (libbpf pin paths under maps_dir set by the open):
  // checks that the node's pins can be adopted by this build and prepares the
  // staged maps (see above). `hint` ends a refusal (what to run).
  static Result<std::unique_ptr<AbiMigration>> Prepare(bpf_object* obj, const std::string& maps_dir,
                                                       const std::string& hint);
  ~AbiMigration();

  // After load: the staged maps filled from the old pins.
  Status Fill();
  // After every link of the object runs the new programs: counters carried
  // over, staging pins renamed over the old ones. Idempotent.
  Status Finish();

  // The version of this object's pins (unstamped: 1 if any of its maps is
  // pinned, else 0).
  const PinnedAbi& pinned() const { return pinned_; }
  bool migrating() const { return pinned_.version != 0 && pinned_.version < kCurrent; }
  // Names of the maps migrated (staged) for this object.
  std::vector<std::string> staged() const;

  static const uint32_t kCurrent;

 private:
  struct Staged;
  AbiMigration() = default;
  PinnedAbi pinned_;
  std::string maps_dir_;
  std::vector<std::unique_ptr<Staged>> staged_;
  bool finished_ = false;
};

// Writes WEFT_ABI_VERSION into the weft_meta map `meta_fd` and, unless a
// weft_meta is pinned already, pins it at maps_dir/weft_meta (under a
// temporary name, then renamed: the pin never exists unstamped).
Status StampAbi(int meta_fd, const std::string& maps_dir);

}  // namespace weft::datapath
