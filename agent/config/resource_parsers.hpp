// Per-kind parsers of the file config source. Internal to agent/config: the
// loader (loader.cc) validates the document header and metadata, then hands
// the document to the parser of its kind.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "agent/config/field_reader.hpp"
#include "agent/config/model.hpp"

namespace weft::config {

struct Metadata {
  std::string name;
  std::string ns;
  Labels labels;
  Labels annotations;
  std::optional<YAML::Node> annotations_node;  // for error positions
};

// Where a VIP was written, to report a VIP claimed by two Services.
struct VipSource {
  Location at;
  std::string path;  // spec.clusterIP or spec.clusterIPs[i]
};

struct ParsedService {
  Service service;
  std::vector<VipSource> vip_sources;  // parallel to service.vips
};

// Both return nullopt after reporting at least one error to `reader`.
std::optional<ParsedService> ParseService(FieldReader& reader, const YAML::Node& doc, const Metadata& meta);
std::optional<Workload> ParseWorkloadEntry(FieldReader& reader, const YAML::Node& doc, const Metadata& meta);

}  // namespace weft::config
