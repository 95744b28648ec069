// Bounds on every input the resource layer accepts, as the Kubernetes API
// server bounds its own (the figure it uses where it has one, Weft's where it
// does not). Each is enforced before the input costs more than a constant
// times its own size (an alias is counted, never expanded, before the tree it
// points into is walked): a refusal names the file, line and column and
// changes nothing.
//
// Where each is enforced:
//  - CheckText / ParseResources (config/resources.cc, config/input_scan.cc):
//    bytes per text, UTF-8, control characters, documents, nesting depth,
//    nodes added by YAML aliases, bytes per object, annotations.
//  - weftctl (cli/ctl/inputs.cc): bytes read per `-f` file and in total.
//  - weft-controller Admin Apply/Delete/Diff (controller/admin_service.cc):
//    bytes and documents per request, before parsing.
//  - the Service parser: ports per Service.
#pragma once

#include <cstddef>
#include <string>

#include "weft/bpf_abi.h"

namespace weft::config {

// One object, as stored (its canonical JSON, aliases expanded): etcd's default
// request limit (--max-request-bytes, 1.5 MiB), which caps every Kubernetes object.
inline constexpr size_t kMaxObjectBytes = 1536 * 1024;

// metadata.annotations, keys and values together: apimachinery's
// TotalAnnotationSizeLimitB (256 KiB).
inline constexpr size_t kMaxAnnotationBytes = 256 * 1024;

// Nodes that YAML aliases (*name) may add to one document when expanded.
// go-yaml (which the API server uses) refuses "excessive aliasing" by ratio;
// a fixed budget is simpler and refuses a billion-laughs document of a few
// hundred bytes after counting, never after expanding.
inline constexpr size_t kMaxAliasNodes = 10000;

// Nesting of mappings and lists within one document (Kubernetes objects need
// about 15; yaml-cpp's own guard is at 2000, deep enough to exhaust a stack
// in the code that walks the tree).
inline constexpr int kMaxDepth = 100;

// One request (weftctl apply -f ..., one Admin Apply/Delete/Diff): all files
// together. The API server takes 3 MiB per request but one object per request;
// Weft applies a whole cluster's YAML at once (10,000 Services with 100,000
// WorkloadEntries is ~21 MB and 110,000 documents, bench/RESULTS.md).
inline constexpr size_t kMaxRequestBytes = 32 * 1024 * 1024;
inline constexpr size_t kMaxDocuments = 200000;

// Ports of one Service: every (cluster IP, port) is one entry of the agent's
// service map, whose ids run 1..WEFT_DEFAULT_MAX_SERVICES-1, and a dual-stack
// Service has two cluster IPs. More ports than this could never be programmed.
inline constexpr size_t kMaxServicePorts = (WEFT_DEFAULT_MAX_SERVICES - 1) / 2;

// "32 MiB", "1.5 MiB", "256 KiB", "1000 bytes": sizes in messages.
std::string FormatBytes(size_t bytes);

}  // namespace weft::config
