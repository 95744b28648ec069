#include "agent/applied_state.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "weft/node/paths.hpp"
#include "weft/sys.hpp"

namespace weft::agent {

std::string AppliedPath(const std::string& state_dir, const std::string& node) {
  return node::StatePaths(state_dir, node).applied;
}

Result<std::optional<AppliedVersion>> LoadApplied(const std::string& path) {
  auto text = sys::ReadSmallFile(path, 4096);
  if (!text.ok()) {
    if (text.status().err() == ENOENT) return std::optional<AppliedVersion>();
    return text.status();
  }
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& why) {
    return Status::Error(path + ": " + why + " (remove it to accept any version from the controller)", EINVAL);
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto id = j.find("store_id");
  auto version = j.find("version");
  if (id == j.end() || !id->is_string()) return bad("no \"store_id\" string");
  if (version == j.end() || !version->is_number_unsigned()) return bad("no \"version\" number");
  return std::optional<AppliedVersion>(AppliedVersion{id->get<std::string>(), version->get<uint64_t>()});
}

Status SaveApplied(const std::string& path, const AppliedVersion& v) {
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(std::filesystem::path(path).parent_path().string()));
  nlohmann::json j = {{"store_id", v.store_id}, {"version", v.version}};
  return sys::WriteFileAtomic(path, j.dump() + "\n", 0600);
}

std::string CheckMonotonic(const std::optional<AppliedVersion>& applied, const std::string& store_id,
                           uint64_t version, const std::string& path) {
  if (!applied || applied->store_id != store_id || version >= applied->version) return "";
  return "version " + std::to_string(version) + " of controller store " +
         (store_id.empty() ? std::string("(none)") : store_id) + " is older than version " +
         std::to_string(applied->version) +
         " that this node has applied from that store: refusing to go back (nothing changed). A controller whose "
         "store went back (restored from an older copy?) must not roll nodes back; if that is intended, remove " +
         path + " on this node";
}

}  // namespace weft::agent
