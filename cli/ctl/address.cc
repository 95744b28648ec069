#include "cli/ctl/address.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

namespace fs = std::filesystem;

namespace weft::cli::ctl {

ControllerChoice ResolveController(const std::string& flag, const char* env, const std::string& lab_root) {
  if (!flag.empty()) return {flag, "--controller"};
  if (env && *env) return {env, "WEFT_CONTROLLER"};
  std::vector<ControllerChoice> labs;
  std::error_code ec;
  for (auto it = fs::directory_iterator(lab_root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::ifstream in(it->path() / "state.json");
    if (!in) continue;
    try {
      auto j = nlohmann::json::parse(in);
      const auto& c = j.at("controller");
      std::string sock = c.value("admin_socket", "");
      if (sock.empty()) continue;
      labs.push_back({"unix://" + sock, "lab " + j.value("lab", it->path().filename().string())});
    } catch (const std::exception&) {
      continue;  // a lab without a controller, or a state file being rewritten
    }
  }
  if (labs.size() == 1) return labs.front();
  return {kDefaultController, labs.empty() ? "default" : "default (" + std::to_string(labs.size()) + " labs run: pick one with --controller)"};
}

}  // namespace weft::cli::ctl
