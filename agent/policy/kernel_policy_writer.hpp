// policy::PolicyMapWriter over the node's pinned TC policy maps (the fds of a
// loaded tc_policy skeleton): one bpf_map_update_elem / delete_elem per
// element, in the order given, stopping at the first failure with an error
// naming the map and the key ("write weft_policy (ep 3, peer 300, port
// 80/tcp, ingress): Argument list too long").
#pragma once

#include <map>
#include <string>

#include "agent/policy/map_writer.hpp"

struct tc_policy;  // generated skeleton (weft/tc_policy.skel.h)

namespace weft::policy {

class KernelPolicyWriter : public PolicyMapWriter {
 public:
  explicit KernelPolicyWriter(tc_policy& skel);

  Result<KernelPolicy> ReadAll() override;
  Status UpsertPolicy(const std::vector<std::pair<weft_policy_key, weft_policy_val>>& kv) override;
  Status DeletePolicy(const std::vector<weft_policy_key>& keys) override;
  Status UpsertIdentity(const std::vector<std::pair<weft_ipcache_key, weft_ipcache_val>>& kv) override;
  Status DeleteIdentity(const std::vector<weft_ipcache_key>& keys) override;
  Status UpsertEndpoints(const std::vector<std::pair<uint32_t, weft_endpoint>>& kv) override;
  Status DeleteEndpoints(const std::vector<uint32_t>& ifindexes) override;
  Result<uint32_t> BumpRevision() override;

  uint32_t revision() const;

 private:
  int policy_fd_, identity_fd_, endpoints_fd_, rev_fd_;
};

// Every entry of a weft_endpoints map (`what` names it in errors): cleanup
// finds our links through it.
Status ReadEndpoints(int fd, const std::string& what, std::map<uint32_t, weft_endpoint>* out);

}  // namespace weft::policy
