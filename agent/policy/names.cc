#include "agent/policy/names.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "weft/sys.hpp"

namespace weft::policy {

NamesFile::NamesFile(std::string state_dir, std::string node) {
  if (state_dir.empty()) return;
  dir_ = state_dir + "/" + node;
  path_ = dir_ + "/names.json";
}

Status NamesFile::Write(const PolicyDesired& desired, const std::vector<EndpointStatus>& endpoints,
                        uint64_t version) {
  if (path_.empty()) return Status::Ok();
  using Json = nlohmann::json;
  Json j;
  j["version"] = version;
  j["identities"] = Json::array();
  for (const auto& [id, n] : desired.identities)
    j["identities"].push_back({{"id", id},
                               {"spiffe_id", n.spiffe_id},
                               {"namespace", n.ns},
                               {"service_account", n.service_account},
                               {"cidrs", n.cidrs}});
  j["policies"] = Json::array();
  for (const auto& [id, p] : desired.policy_names)
    j["policies"].push_back({{"id", id}, {"name", p.name}, {"action", p.action}});
  j["endpoints"] = Json::array();
  for (const auto& [name, e] : desired.endpoints) {
    Json ep = {{"workload", name}, {"ifindex", 0}, {"ifname", ""}, {"ep_id", 0}, {"identity", e.identity}};
    for (const auto& s : endpoints)
      if (s.workload == name) {
        ep["ifindex"] = s.ifindex;
        ep["ifname"] = s.ifname;
        ep["ep_id"] = s.ep_id;
      }
    Json addrs = Json::array();
    for (const auto& a : e.addresses) addrs.push_back(a.ToString());
    ep["addresses"] = addrs;
    ep["enforce_ingress"] = e.enforce_ingress;
    ep["policies"] = e.policies;
    j["endpoints"].push_back(ep);
  }
  std::string text = j.dump(1) + "\n";
  struct stat st {};
  if (text == last_ && ::lstat(path_.c_str(), &st) == 0) return Status::Ok();  // unchanged (e.g. a re-placement)
  // Data files are 0600 in a 0700 directory (sys::WriteFileAtomic: tmp + fsync + rename).
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(dir_));
  WEFT_RETURN_IF_ERROR(sys::WriteFileAtomic(path_, text, 0600));
  last_ = std::move(text);
  return Status::Ok();
}

}  // namespace weft::policy
