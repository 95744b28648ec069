// The agent's file config source: a multi-document YAML file in Kubernetes style
// (every kind ParseResources accepts, config/resources.hpp). Validation is
// strict and complete: on any error the Status lists every error of the file,
// one per line, as
// "<file>:<line>:<col>: <Kind> <namespace>/<name>: <field path>: <message>".
// The agent compiles the resources with the controller's compiler
// (agent/file_config.hpp), as the controller compiles them for its agents.
#pragma once

#include <string>
#include <vector>

#include "config/resource.hpp"
#include "weft/status.hpp"

namespace weft::config {

// Reads at most kMaxRequestBytes (one more is refused), then ParseResources.
Result<std::vector<Resource>> LoadConfigFile(const std::string& path);

}  // namespace weft::config
