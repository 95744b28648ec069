// What this node has applied from a controller, kept across agent restarts:
// <state-dir>/<node>/applied.json, {"store_id": "...", "version": N}, 0600 in
// a 0700 directory, written atomically after every ACKed push.
//
// Versions never go backwards (issue 9): the agent refuses a push whose
// version is lower than the one it applied from the same store (the store id
// the controller sends with every push). Another store id is a new store (a
// reset), accepted and logged: it is the controller's to prove (with mTLS its
// certificate says it is the controller; the store id then says which store).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "weft/status.hpp"

namespace weft::agent {

struct AppliedVersion {
  std::string store_id;  // "" for a controller that sent none
  uint64_t version = 0;
  bool operator==(const AppliedVersion&) const = default;
};

std::string AppliedPath(const std::string& state_dir, const std::string& node);

// nullopt: no file (a node that never applied a push). A file that cannot be
// read or parsed is an error naming it (the agent does not start: it would
// accept any version).
Result<std::optional<AppliedVersion>> LoadApplied(const std::string& path);
// Creates the directory (0700) if needed; the file is 0600.
Status SaveApplied(const std::string& path, const AppliedVersion& v);

// Decides whether a push of `version` from store `store_id` may be applied
// by a node that has applied `applied`: "" if so, else why not (the NACK).
std::string CheckMonotonic(const std::optional<AppliedVersion>& applied, const std::string& store_id,
                           uint64_t version, const std::string& path);

}  // namespace weft::agent
