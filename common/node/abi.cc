#include "weft/node/abi.hpp"

#include <bpf/bpf.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/unique_fd.hpp"

namespace weft::node {

Result<PinnedAbi> ReadPinnedAbi(const std::string& maps_dir) {
  PinnedAbi out;
  const std::string pin = maps_dir + "/" WEFT_MAP_META;
  struct stat st {};
  if (::lstat(pin.c_str(), &st) == 0) {
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) return Status::Errno("open pinned map " + pin, errno);
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return Status::Errno("get info of pinned map " + pin, errno);
    if (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != sizeof(__u32) || info.value_size < sizeof(__u32) ||
        info.max_entries < 1)
      return Status::Error("pinned map " + pin + " is not a weft_meta (type " + std::to_string(info.type) +
                           ", value size " + std::to_string(info.value_size) + ")");
    std::vector<uint8_t> v(info.value_size);
    __u32 zero = 0;
    if (bpf_map_lookup_elem(fd.get(), &zero, v.data()) != 0) return Status::Errno("read " + pin, errno);
    std::memcpy(&out.version, v.data(), sizeof(out.version));  // abi_version comes first in every layout
    if (out.version == 0) return Status::Error(pin + " records ABI version 0 (not a stamp any agent writes)");
    out.stamped = true;
    return out;
  }
  std::error_code ec;
  if (std::filesystem::directory_iterator it(maps_dir, ec); !ec && it != std::filesystem::directory_iterator())
    out.version = 1;  // pins from before weft_meta existed
  return out;
}

}  // namespace weft::node
