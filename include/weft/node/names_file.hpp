// names.json (<state-dir>/<node>/names.json, weft/node/paths.hpp): what the
// agent publishes for weftctl flows/trace and the tests to decode the
// numbers in the maps: identities (SPIFFE ids), AuthorizationPolicy names,
// and the node's endpoints with their host veths. One schema, written and
// read here only:
//
//   {"schema": 1, "version": <config version>,
//    "identities": [{"id", "spiffe_id", "namespace", "service_account", "cidrs": [..]}],
//    "policies":   [{"id", "name", "action"}],
//    "endpoints":  [{"workload", "ifindex", "ifname", "ep_id", "identity",
//                    "addresses": [..], "enforce_ingress", "policies": ["ns/name", ..]}]}
//
// ifindex/ifname/ep_id are 0/"" for a workload whose interface was not found.
// A file without "schema" is schema 1 (agents before the field existed wrote
// the same fields). The reader refuses, naming the file and the place: more
// than kMaxNamesBytes, another schema, nesting deeper than the schema's,
// a missing or mistyped field, an id listed twice. Fields it does not know
// are ignored (a newer agent may add some within schema 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "weft/status.hpp"

namespace weft::node {

inline constexpr uint32_t kNamesSchema = 1;
// A node's names come from one config push, which is at most
// transport::kMaxMessageBytes (256 MiB) of protobuf; its names are a part of it.
inline constexpr size_t kMaxNamesBytes = 256u * 1024 * 1024;
// The schema nests 4 deep ({"endpoints": [{"addresses": [..]}]}); room for
// fields a newer agent adds, none for a pathological nesting.
inline constexpr int kMaxNamesDepth = 8;

struct IdentityName {
  uint32_t id = 0;
  std::string spiffe_id, ns, service_account;
  std::vector<std::string> cidrs;
};
struct PolicyName {
  uint32_t id = 0;
  std::string name, action;
};
struct EndpointName {
  std::string workload;  // "ns/name"
  uint32_t ifindex = 0;  // host-side veth; 0: not placed
  std::string ifname;
  uint32_t ep_id = 0, identity = 0;
  std::vector<std::string> addresses;
  bool enforce_ingress = false;
  std::vector<std::string> policies;  // "ns/name"
};
struct NodeNames {
  uint64_t version = 0;  // the controller's config version these names are of
  std::map<uint32_t, IdentityName> identities;
  std::map<uint32_t, PolicyName> policies;
  std::vector<EndpointName> endpoints;
};

// The file's text (deterministic: the same names give the same bytes).
std::string RenderNames(const NodeNames& names);
// `what` names the input in errors (the file's path). `max_bytes`: the bound
// (kMaxNamesBytes; smaller in tests).
Result<NodeNames> ParseNames(std::string_view text, const std::string& what, size_t max_bytes = kMaxNamesBytes);

// Atomic (temp file, fsync, rename), mode 0600, its directory made private
// (0700) first.
Status WriteNamesFile(const std::string& path, const std::string& rendered);
// Reads at most max_bytes (a symlink is refused) and parses.
Result<NodeNames> ReadNamesFile(const std::string& path, size_t max_bytes = kMaxNamesBytes);

}  // namespace weft::node
