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

}  // namespace weft::lb
