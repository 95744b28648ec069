// Admin (proto/weft/v1/admin.proto): what weftctl apply/delete/get/diff/status
// speak. Unary handlers on gRPC's callback API; the work is done inline (a
// write is one SQLite transaction plus the compile and the queuing of pushes).
//
// Writes are serialized by one mutex: parse (outside it) -> analyze ->
// store transaction -> ConfigHub::Publish. Errors map to gRPC codes:
// parse errors and bad input INVALID_ARGUMENT (the full "file:line:col: ..."
// list), absent resources NOT_FOUND, a clusterIP held by another Service
// ALREADY_EXISTS, an exhausted service CIDR RESOURCE_EXHAUSTED, database
// errors INTERNAL. A failed call changes nothing.
#pragma once

#include <memory>
#include <string>

#include "controller/config_service.hpp"
#include "controller/node_status.hpp"
#include "controller/store.hpp"

namespace grpc {
class Service;
}

namespace weft::controller {

class AdminService {
 public:
  AdminService(Store& store, ConfigHub& hub, NodeRegistry& nodes, std::string store_id = "");
  ~AdminService();
  grpc::Service* service();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::controller
