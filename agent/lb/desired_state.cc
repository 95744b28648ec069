#include "agent/lb/desired_state.hpp"

#include <arpa/inet.h>

namespace weft::lb {

std::string Backend::StableName() const {
  std::string host = addr.is_v4() ? addr.ToString() : "[" + addr.ToString() + "]";
  return host + ":" + std::to_string(port);
}

weft_svc_key MakeServiceKey(const IpAddr& vip, uint16_t port, uint8_t proto) {
  weft_svc_key key{};
  vip.CopyTo(key.addr);
  key.port = htons(port);
  key.proto = proto;
  return key;
}

DesiredState WithoutBackends(const DesiredState& d, const std::set<IpAddr>& addrs, size_t* removed) {
  DesiredState out = d;
  size_t n = 0;
  for (auto& [key, svc] : out.services) {
    const size_t before = svc.backends.size();
    std::erase_if(svc.backends, [&](const Backend& b) { return addrs.count(b.addr) > 0; });
    n += before - svc.backends.size();
  }
  if (removed) *removed = n;
  return out;
}

}  // namespace weft::lb
