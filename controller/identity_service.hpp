// NodeIdentity (proto/weft/v1/identity.proto): Join (one-time token -> the
// node's first certificate) and Renew (node certificate -> a new one for the
// same node). Unary callback handlers; the work (a store write for the token,
// one ECDSA signature) is done inline.
#pragma once

#include <memory>

#include "controller/ca.hpp"

namespace grpc {
class Service;
}

namespace weft::controller {

class IdentityService {
 public:
  explicit IdentityService(ClusterCa& ca);
  ~IdentityService();
  grpc::Service* service();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::controller
