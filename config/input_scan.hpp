// The checks a text passes before it is loaded into a YAML tree (internal to
// config/; limits.hpp has the figures). Both report every refusal to
// Diagnostics as "file:line:col: <subject>: <problem>" and return whether the
// text may be loaded.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/diagnostics.hpp"

namespace weft::config {

// Size (kMaxRequestBytes), UTF-8, and YAML's printable set: no control
// characters but tab, LF and CR (a NUL cut messages and names short).
// Reports the first problem only: after it, positions mean little.
bool ScanEncoding(std::string_view text, Diagnostics& diags);

// One pass of yaml-cpp's event parser, nothing built: counts documents
// (at most `max_documents`), nesting depth (kMaxDepth), the nodes that aliases
// add when expanded (kMaxAliasNodes per document) and each document's size
// with its aliases expanded (kMaxObjectBytes); refuses an alias to a node that
// contains it (a cycle), and a document that starts where the previous one
// did (yaml-cpp 0.7's endless loop on a ',' outside a flow collection).
// Other syntax errors are left to the loader.
bool ScanStructure(std::string_view text, Diagnostics& diags, size_t max_documents);

// Whether ScanStructure can find anything the loader would not: only with an
// anchor ('&' somewhere: without one there is no alias), a ',' (the only
// character found to loop yaml-cpp's LoadAll, by the config_yaml fuzzer and an
// exhaustive run over three-character texts), or with more
// document markers ("---"/"..." at a line start) than `max_documents`. The
// loader itself enforces depth (YamlToJson, TooDeep) and the exact object
// size (the canonical JSON), with the same messages; the scan costs a second
// parse (~70% of yaml-cpp's LoadAll), paid only by texts that need it.
bool NeedsStructureScan(std::string_view text, size_t max_documents);

// The messages of the depth and size limits, wherever they are enforced.
std::string TooDeepMessage();
std::string TooLargeMessage();

}  // namespace weft::config
