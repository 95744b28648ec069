// Which controller weftctl talks to: --controller, else $WEFT_CONTROLLER,
// else the admin socket of the one running lab (/run/weft/lab/*/state.json
// with a controller), else unix:///run/weft/controller/admin.sock.
#pragma once

#include <string>

namespace weft::cli::ctl {

inline constexpr const char* kDefaultController = "unix:///run/weft/controller/admin.sock";
inline constexpr const char* kLabRoot = "/run/weft/lab";

struct ControllerChoice {
  std::string address;
  std::string source;  // "--controller", "WEFT_CONTROLLER", "lab NAME", "default"
};

// `env` is $WEFT_CONTROLLER (nullptr if unset); `lab_root` holds one directory per lab.
ControllerChoice ResolveController(const std::string& flag, const char* env, const std::string& lab_root = kLabRoot);

}  // namespace weft::cli::ctl
