#include "weft/ip.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace weft {

namespace {
constexpr uint8_t kV4Prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}

std::optional<IpAddr> IpAddr::Parse(std::string_view text) {
  std::string s(text);
  IpAddr ip;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return FromV4(v4.s_addr);
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) return FromBytes(v6.s6_addr);
  return std::nullopt;
}

IpAddr IpAddr::FromV4(uint32_t addr_be) {
  IpAddr ip;
  std::memcpy(ip.b_.data(), kV4Prefix, 12);
  std::memcpy(ip.b_.data() + 12, &addr_be, 4);
  return ip;
}

IpAddr IpAddr::FromBytes(const uint8_t bytes[16]) {
  IpAddr ip;
  std::memcpy(ip.b_.data(), bytes, 16);
  return ip;
}

bool IpAddr::is_v4() const { return std::memcmp(b_.data(), kV4Prefix, 12) == 0; }

uint32_t IpAddr::v4_be() const {
  uint32_t v;
  std::memcpy(&v, b_.data() + 12, 4);
  return v;
}

void IpAddr::CopyTo(uint8_t out[16]) const { std::memcpy(out, b_.data(), 16); }

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    in_addr a{};
    a.s_addr = v4_be();
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, b_.data(), buf, sizeof(buf));
  }
  return buf;
}

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = IpAddr::Parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int len = -1;
  auto rest = text.substr(slash + 1);
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), len);
  if (ec != std::errc() || p != rest.data() + rest.size()) return std::nullopt;
  int max = addr->is_v4() ? 32 : 128;
  if (len < 0 || len > max) return std::nullopt;
  return IpPrefix{*addr, len};
}

bool IpPrefix::Contains(const IpAddr& ip) const {
  if (ip.is_v4() != addr.is_v4()) return false;
  int bits = addr.is_v4() ? 96 + len : len;
  const auto& a = addr.bytes();
  const auto& b = ip.bytes();
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (b[i] & mask)) return false;
  }
  return true;
}

std::string IpPrefix::ToString() const { return addr.ToString() + "/" + std::to_string(len); }

}  // namespace weft
