#include "agent/policy/names.hpp"

#include <sys/stat.h>

#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"

namespace weft::policy {

NamesFile::NamesFile(std::string state_dir, std::string node) {
  if (state_dir.empty()) return;
  const node::StatePaths paths(std::move(state_dir), std::move(node));  // the node-local layout
  dir_ = paths.dir;
  path_ = paths.names;
}

Status NamesFile::Write(const PolicyDesired& desired, const std::vector<EndpointStatus>& endpoints,
                        uint64_t version) {
  if (path_.empty()) return Status::Ok();
  // The file's schema is the node-local contract's (weft/node/names_file.hpp).
  node::NodeNames n;
  n.version = version;
  n.identities = desired.identities;
  n.policies = desired.policy_names;
  for (const auto& [name, e] : desired.endpoints) {
    node::EndpointName ep;
    ep.workload = name;
    ep.identity = e.identity;
    for (const auto& s : endpoints)
      if (s.workload == name) {
        ep.ifindex = s.ifindex;
        ep.ifname = s.ifname;
        ep.ep_id = s.ep_id;
      }
    for (const auto& a : e.addresses) ep.addresses.push_back(a.ToString());
    ep.enforce_ingress = e.enforce_ingress;
    ep.policies = e.policies;
    n.endpoints.push_back(std::move(ep));
  }
  std::string text = node::RenderNames(n);
  struct stat st {};
  if (text == last_ && ::lstat(path_.c_str(), &st) == 0) return Status::Ok();  // unchanged (e.g. a re-placement)
  // 0600 in a 0700 directory, tmp + fsync + rename.
  WEFT_RETURN_IF_ERROR(node::WriteNamesFile(path_, text));
  last_ = std::move(text);
  return Status::Ok();
}

}  // namespace weft::policy
