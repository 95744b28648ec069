#include "config/resource.hpp"

namespace weft::config {

std::string Diagnostic::ToString() const {
  std::string out;
  if (!pos.file.empty()) {
    out = pos.file;
    if (pos.line > 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column > 0 ? pos.column : 1);
    out += ": ";
  }
  if (!resource.empty()) out += resource + ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

}  // namespace weft::config
