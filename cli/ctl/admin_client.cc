#include "cli/ctl/admin_client.hpp"

#include <thread>

#include "weft/transport.hpp"

namespace weft::cli::ctl {

Result<AdminConn> ConnectAdmin(const std::string& address) {
  auto ch = transport::Dial(address);
  if (!ch.ok()) return ch.status();
  AdminConn c;
  c.address = address;
  c.channel = *ch;
  c.stub = weft::v1::Admin::NewStub(c.channel);
  return c;
}

std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

bool IsRejectedInput(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return true;
    default:
      return false;
  }
}

int ExitCodeFor(grpc::StatusCode code) {
  if (code == grpc::StatusCode::OK) return 0;
  return IsRejectedInput(code) ? 1 : 2;
}

std::string DescribeRpcError(const grpc::Status& s, const std::string& what, const std::string& address) {
  if (IsRejectedInput(s.error_code())) return s.error_message();
  std::string code;
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: code = "UNAVAILABLE"; break;
    case grpc::StatusCode::DEADLINE_EXCEEDED: code = "DEADLINE_EXCEEDED"; break;
    case grpc::StatusCode::UNIMPLEMENTED: code = "UNIMPLEMENTED"; break;
    case grpc::StatusCode::INTERNAL: code = "INTERNAL"; break;
    case grpc::StatusCode::PERMISSION_DENIED: code = "PERMISSION_DENIED"; break;
    case grpc::StatusCode::UNAUTHENTICATED: code = "UNAUTHENTICATED"; break;
    default: code = "code " + std::to_string(static_cast<int>(s.error_code())); break;
  }
  std::string msg = what + ": controller " + address + ": " + code + ": " + s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    msg += " (is weft-controller running? choose it with --controller or WEFT_CONTROLLER)";
  return msg;
}

Status WaitControllerReady(AdminConn& conn, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  grpc::Status last;
  for (;;) {
    auto ctx = Context(std::chrono::milliseconds(1000));
    weft::v1::StatusRequest req;
    weft::v1::StatusResponse resp;
    last = conn.stub->Status(ctx.get(), req, &resp);
    if (last.ok()) return Status::Ok();
    if (std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Error(DescribeRpcError(last, "wait for the controller", conn.address));
}

}  // namespace weft::cli::ctl
