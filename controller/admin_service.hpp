// Admin (proto/weft/v1/admin.proto): what weftctl apply/delete/get/diff/status
// speak. Unary handlers on gRPC's callback API; the work is done inline (a
// write is one SQLite transaction plus the compile and the queuing of pushes).
//
// Writes are serialized by one mutex: parse (outside it) -> analyze ->
// store transaction -> ConfigHub::Publish. Errors map to gRPC codes:
// parse errors and bad input INVALID_ARGUMENT (the full "file:line:col: ..."
// list), absent resources NOT_FOUND, a clusterIP held by another Service
// ALREADY_EXISTS, an exhausted service CIDR RESOURCE_EXHAUSTED, database
// errors INTERNAL. A failed call changes nothing. Over TCP every call needs
// an admin certificate (UNAUTHENTICATED without a certificate,
// PERMISSION_DENIED with another identity); see controller/auth.hpp.
#pragma once

#include <memory>
#include <string>

#include "controller/ca.hpp"
#include "controller/config_service.hpp"
#include "controller/node_status.hpp"
#include "controller/store.hpp"

namespace grpc {
class Service;
}

namespace weft::controller {

class AdminService {
 public:
  // Every RPC is authorized (controller/auth.hpp); the CA issues join tokens
  // and admin certificates.
  AdminService(Store& store, ConfigHub& hub, NodeRegistry& nodes, ClusterCa& ca, std::string store_id = "");
  ~AdminService();
  grpc::Service* service();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::controller
