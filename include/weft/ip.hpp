// IP addresses as Weft stores them: 16 bytes, IPv4 mapped into ::ffff:0:0/96.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft {

class IpAddr {
 public:
  IpAddr() = default;
  static std::optional<IpAddr> Parse(std::string_view text);  // "10.0.0.1", "fd00::1"
  static IpAddr FromV4(uint32_t addr_be);                        // network byte order
  static IpAddr FromBytes(const uint8_t bytes[16]);

  bool is_v4() const;
  uint32_t v4_be() const;  // only if is_v4()
  const std::array<uint8_t, 16>& bytes() const { return b_; }
  void CopyTo(uint8_t out[16]) const;
  std::string ToString() const;  // dotted quad for v4, RFC 5952 for v6

  auto operator<=>(const IpAddr&) const = default;

 private:
  std::array<uint8_t, 16> b_{};
};

// A CIDR prefix, e.g. 10.96.0.0/12 or fd00:10:96::/112.
struct IpPrefix {
  IpAddr addr;
  int len = 0;  // in the address family's own bits (0..32 or 0..128)
  static std::optional<IpPrefix> Parse(std::string_view text);
  bool Contains(const IpAddr& ip) const;
  std::string ToString() const;
};

}  // namespace weft
