// The shared resource layer: Kubernetes and Istio YAML -> validated Resources
// (config/resource.hpp) and istioctl-analyze-style warnings; the typed view of
// a Resource is config/typed.hpp's. Nothing here throws.
//
// Kinds: v1 Service, ServiceAccount, Namespace; apps/v1 Deployment;
// networking.istio.io/{v1,v1beta1,v1alpha3} VirtualService, DestinationRule,
// ServiceEntry, WorkloadEntry, Gateway; security.istio.io/{v1,v1beta1}
// AuthorizationPolicy, PeerAuthentication, RequestAuthentication.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/limits.hpp"
#include "config/resource.hpp"
#include "weft/status.hpp"

namespace weft::config {

struct ParseOptions {
  // Documents this text may hold (the caller's share of kMaxDocuments per request).
  size_t max_documents = kMaxDocuments;
};

// Multi-document YAML -> Resources, in file order. First the bounds of
// limits.hpp (CheckText; with an anchor in the text, documents, nesting,
// alias expansion and object size counted without building anything;
// nesting and the exact size again on each document's JSON), then strict
// validation (types,
// enums, required and unknown fields, names, Istio's semantic rules,
// duplicates of kind/ns/name and of addresses within the text). On any error
// the Status lists every error, one per line, in file order:
// "<file>:<line>:<col>: <Kind> <ns>/<name>: <field>: <problem>"; control
// characters in a message are escaped (\x00), so a line is never cut short.
// Each Resource's object is the canonical JSON of the document with
// metadata.namespace set ("default" when absent; none for cluster-scoped kinds).
Result<std::vector<Resource>> ParseResources(std::string_view text, std::string_view filename,
                                             const ParseOptions& options = {});

// The text checks ParseResources starts with: at most kMaxRequestBytes, valid
// UTF-8, no control character but tab, LF and CR (YAML's printable set).
// "<file>:<line>:<col>: input: invalid UTF-8 (byte 0xff): ...". weftctl runs
// it on every file before sending it.
Status CheckText(std::string_view text, std::string_view filename);

// A name from outside (a file name sent by a client) as it may appear in
// messages and protobuf strings: control characters and bytes that are not
// UTF-8 written as \xNN.
std::string DisplayName(std::string_view name);

// Warnings (never errors) for references that do not resolve, as istioctl
// analyze gives them (code "ReferencedResourceNotFound"): a VirtualService
// destination host that is neither a Service nor a ServiceEntry host, a subset
// that no DestinationRule for that host defines, a Gateway that does not exist.
std::vector<Diagnostic> Analyze(const std::vector<Resource>& all);

// YAML text of a JSON value (weftctl get -o yaml): block style, keys in the
// JSON's order, strings that would read back as another type are quoted.
std::string ToYaml(const nlohmann::json& value);

}  // namespace weft::config
