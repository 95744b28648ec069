// The agent's file config source: a multi-document YAML file in Kubernetes style
// (every kind ParseResources accepts, config/resources.hpp; the agent uses
// Services and WorkloadEntries). Validation is strict and complete: on any error the
// Status lists every error of the file, one per line, as
// "<file>:<line>:<col>: <Kind> <namespace>/<name>: <field path>: <message>".
#pragma once

#include <string>
#include <string_view>

#include "config/model.hpp"
#include "weft/status.hpp"

namespace weft::config {

Result<Config> ParseConfig(std::string_view text, std::string_view filename);
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace weft::config
