// The agent's file mode: a config file, bounded as an Admin request is
// (config/limits.hpp), through ParseResources.
#include "config/loader.hpp"

#include <fstream>

#include "config/limits.hpp"
#include "config/resources.hpp"

namespace weft::config {

Result<std::vector<Resource>> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno("read config " + path, errno);
  std::string text(kMaxRequestBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return Status::Errno("read config " + path, errno);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxRequestBytes) {
    return Status::Error("read config " + path + ": larger than " + FormatBytes(kMaxRequestBytes) + " (the limit)",
                         EFBIG);
  }
  return ParseResources(text, path);
}

}  // namespace weft::config
