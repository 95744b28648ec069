#include "agent/policy/kernel_policy_writer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>

#include <cerrno>
#include <string>

#include "weft/ip.hpp"
#include "weft/tc_policy.skel.h"

namespace weft::policy {
namespace {

template <typename K, typename V, typename M>
Status ReadMap(int fd, const std::string& name, M* out) {
  K key{}, next{};
  void* prev = nullptr;
  for (;;) {
    if (bpf_map_get_next_key(fd, prev, &next) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::Errno("iterate map " + name, errno);
    }
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) (*out)[next] = v;
    key = next;
    prev = &key;
  }
}

}  // namespace

Status ReadEndpoints(int fd, const std::string& what, std::map<uint32_t, weft_endpoint>* out) {
  return ReadMap<uint32_t, weft_endpoint>(fd, what, out);
}

namespace {

std::string Describe(const weft_policy_key& k) {
  return "(ep " + std::to_string(k.ep_id) + ", peer " + std::to_string(k.peer_identity) + ", port " +
         std::to_string(k.port) + "/" + (k.proto == IPPROTO_UDP ? "udp" : "tcp") + ", " +
         (k.direction == WEFT_DIR_EGRESS ? "egress" : "ingress") + ")";
}
std::string Describe(const weft_ipcache_key& k) {
  IpAddr a = IpAddr::FromBytes(k.addr);
  int len = static_cast<int>(k.prefixlen) - (a.is_v4() ? 96 : 0);
  return a.ToString() + "/" + std::to_string(len);
}
std::string Describe(uint32_t ifindex) { return "ifindex " + std::to_string(ifindex); }

template <typename K, typename V>
Status Put(int fd, const char* name, const std::vector<std::pair<K, V>>& kv) {
  for (const auto& [k, v] : kv)
    if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) != 0)
      return Status::Errno(std::string("write ") + name + " " + Describe(k), errno);
  return Status::Ok();
}
template <typename K>
Status Del(int fd, const char* name, const std::vector<K>& keys) {
  for (const auto& k : keys)
    if (bpf_map_delete_elem(fd, &k) != 0 && errno != ENOENT)
      return Status::Errno(std::string("delete ") + name + " " + Describe(k), errno);
  return Status::Ok();
}

}  // namespace

KernelPolicyWriter::KernelPolicyWriter(tc_policy& skel)
    : policy_fd_(bpf_map__fd(skel.maps.weft_policy)),
      identity_fd_(bpf_map__fd(skel.maps.weft_identity)),
      endpoints_fd_(bpf_map__fd(skel.maps.weft_endpoints)),
      rev_fd_(bpf_map__fd(skel.maps.weft_policy_rev)) {}

Result<KernelPolicy> KernelPolicyWriter::ReadAll() {
  KernelPolicy live;
  WEFT_RETURN_IF_ERROR((ReadMap<uint32_t, weft_endpoint>(endpoints_fd_, WEFT_MAP_ENDPOINTS, &live.endpoints)));
  WEFT_RETURN_IF_ERROR((ReadMap<weft_policy_key, weft_policy_val>(policy_fd_, WEFT_MAP_POLICY, &live.policy)));
  WEFT_RETURN_IF_ERROR((ReadMap<weft_ipcache_key, weft_ipcache_val>(identity_fd_, WEFT_MAP_IDENTITY, &live.identity)));
  return live;
}

Status KernelPolicyWriter::UpsertPolicy(const std::vector<std::pair<weft_policy_key, weft_policy_val>>& kv) {
  return Put(policy_fd_, WEFT_MAP_POLICY, kv);
}
Status KernelPolicyWriter::DeletePolicy(const std::vector<weft_policy_key>& keys) {
  return Del(policy_fd_, WEFT_MAP_POLICY, keys);
}
Status KernelPolicyWriter::UpsertIdentity(const std::vector<std::pair<weft_ipcache_key, weft_ipcache_val>>& kv) {
  return Put(identity_fd_, WEFT_MAP_IDENTITY, kv);
}
Status KernelPolicyWriter::DeleteIdentity(const std::vector<weft_ipcache_key>& keys) {
  return Del(identity_fd_, WEFT_MAP_IDENTITY, keys);
}
Status KernelPolicyWriter::UpsertEndpoints(const std::vector<std::pair<uint32_t, weft_endpoint>>& kv) {
  return Put(endpoints_fd_, WEFT_MAP_ENDPOINTS, kv);
}
Status KernelPolicyWriter::DeleteEndpoints(const std::vector<uint32_t>& ifindexes) {
  return Del(endpoints_fd_, WEFT_MAP_ENDPOINTS, ifindexes);
}

uint32_t KernelPolicyWriter::revision() const {
  uint32_t zero = 0, v = 0;
  bpf_map_lookup_elem(rev_fd_, &zero, &v);
  return v;
}

Result<uint32_t> KernelPolicyWriter::BumpRevision() {
  uint32_t zero = 0, rev = revision() + 1;
  if (bpf_map_update_elem(rev_fd_, &zero, &rev, BPF_ANY) != 0) return Status::Errno("bump " WEFT_MAP_POLICY_REV, errno);
  return rev;
}

}  // namespace weft::policy
