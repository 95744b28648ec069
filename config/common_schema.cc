// Value checks and schema pieces shared by the kind families.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "config/limits.hpp"
#include "config/names.hpp"
#include "config/resource_parsers.hpp"
#include "weft/ip.hpp"

namespace weft::config {

std::string CheckIp(std::string_view text) { return IpAddr::Parse(text) ? "" : "must be an IP address"; }

std::string CheckIpOrCidr(std::string_view text) {
  if (text.find('/') == std::string_view::npos) return CheckIp(text).empty() ? "" : "must be an IP address or CIDR";
  return IpPrefix::Parse(text) ? "" : "must be an IP address or CIDR";
}

std::string CheckPortString(std::string_view text) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  bool ok = ec == std::errc() && end == text.data() + text.size() && v >= 1 && v <= 65535;
  return ok ? "" : "must be a port number (1-65535)";
}

// Istio's host rules (ValidateWildcardDomain): DNS labels of letters, digits and
// '-', optionally led by a "*" label; "*" alone matches every host.
std::string CheckHost(std::string_view host) {
  if (host.empty()) return "must not be empty";
  if (host.size() > 255) return "must be no more than 255 characters";
  if (host == "*") return "";
  if (host.rfind("*.", 0) == 0) host.remove_prefix(2);
  size_t start = 0;
  while (true) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    bool ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
              std::all_of(label.begin(), label.end(),
                          [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
    if (!ok) return "must be a host name (DNS labels of letters, digits and '-') or a wildcard (\"*\", \"*.example.com\")";
    if (dot == std::string_view::npos) return "";
    start = dot + 1;
  }
}

std::string CheckHeaderName(std::string_view name) {
  if (name.empty()) return "must not be empty";
  bool ok = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
  return ok ? "" : "is not a valid HTTP header name";
}

std::string CheckStrictHeaderName(std::string_view name) {
  if (name.empty()) return "must not be empty";
  bool ok = std::all_of(name.begin(), name.end(),
                        [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
  return ok ? "" : "must be a header name of letters, digits, '-' and '_'";
}

void CheckAnnotationSize(FieldReader& r, const YAML::Node& annotations, const std::string& path) {
  if (!annotations.IsMap()) return;
  size_t total = 0;
  for (const auto& kv : annotations) {
    if (kv.first.IsScalar()) total += kv.first.Scalar().size();
    if (kv.second.IsScalar()) total += kv.second.Scalar().size();
  }
  if (total > kMaxAnnotationBytes) {
    r.Error(annotations, path,
            "annotations total " + std::to_string(total) + " bytes, more than " + FormatBytes(kMaxAnnotationBytes) +
                " (the limit, as Kubernetes')");
  }
}

const schema::Node* WorkloadSelector() {
  static const auto* s = schema::Object({{"matchLabels", schema::LabelMap()}});
  return s;
}

// "." (this namespace), "*" (all) or a namespace name; for a ServiceEntry also "~" (no one).
const schema::Node* ExportTo(bool service_entry) {
  static const auto* s = schema::List(schema::String([](std::string_view ns) -> std::string {
    if (ns == "." || ns == "*") return "";
    std::string why = CheckDns1123Label(ns);
    return why.empty() ? "" : "must be \".\", \"*\" or a namespace name";
  }));
  static const auto* se = schema::List(schema::String([](std::string_view ns) -> std::string {
    if (ns == "." || ns == "*" || ns == "~") return "";
    std::string why = CheckDns1123Label(ns);
    return why.empty() ? "" : "must be \".\", \"*\", \"~\" or a namespace name";
  }));
  return service_entry ? se : s;
}

}  // namespace weft::config
