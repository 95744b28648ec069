#include "config/names.hpp"

#include <algorithm>

namespace weft::config {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// [a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?, at most 63 characters.
std::string CheckQualifiedNamePart(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 63) return "must be no more than 63 characters";
  if (!IsAlnum(s.front()) || !IsAlnum(s.back())) return "must start and end with an alphanumeric character";
  bool ok = std::all_of(s.begin(), s.end(),
                        [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
  return ok ? "" : "may contain only alphanumerics, '-', '_' and '.'";
}

}  // namespace

std::string CheckDns1123Label(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 63) return "must be no more than 63 characters";
  bool chars = std::all_of(name.begin(), name.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
  if (!chars || !IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) {
    return "must be a DNS-1123 label: lower case alphanumerics and '-', starting and ending with an "
           "alphanumeric";
  }
  return "";
}

std::string CheckDns1123Subdomain(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 253) return "must be no more than 253 characters";
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view part = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!CheckDns1123Label(part).empty()) {
      return "must be a DNS-1123 subdomain: lower case alphanumerics, '-' and '.', starting and "
             "ending with an alphanumeric";
    }
    if (dot == std::string_view::npos) return "";
    start = dot + 1;
  }
}

std::string CheckIanaSvcName(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 15) return "must be no more than 15 characters";
  bool chars = std::all_of(name.begin(), name.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
  if (!chars) return "may contain only lower case alphanumerics and '-'";
  if (name.front() == '-' || name.back() == '-') return "must not start or end with '-'";
  if (name.find("--") != std::string_view::npos) return "must not contain consecutive '-'";
  if (std::none_of(name.begin(), name.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
    return "must contain at least one letter";
  }
  return "";
}

std::string CheckLabelKey(std::string_view key) {
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    std::string prefix = CheckDns1123Subdomain(key.substr(0, slash));
    if (!prefix.empty()) return "prefix " + prefix;
    key = key.substr(slash + 1);
  }
  std::string name = CheckQualifiedNamePart(key);
  return name.empty() ? "" : "name part " + name;
}

std::string CheckLabelValue(std::string_view value) {
  return value.empty() ? "" : CheckQualifiedNamePart(value);
}

}  // namespace weft::config
