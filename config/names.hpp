// Kubernetes name rules (apimachinery/pkg/util/validation). Each check returns
// an empty string when the value is valid, else why it is not.
#pragma once

#include <string>
#include <string_view>

namespace weft::config {

std::string CheckDns1123Label(std::string_view name);      // Service, Namespace names
std::string CheckDns1123Subdomain(std::string_view name);  // most other object names
std::string CheckIanaSvcName(std::string_view name);       // named ports (targetPort)
std::string CheckLabelKey(std::string_view key);
std::string CheckLabelValue(std::string_view value);

}  // namespace weft::config
