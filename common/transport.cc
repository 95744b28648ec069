#include "weft/transport.hpp"

namespace weft::transport {

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials() {
  return grpc::InsecureChannelCredentials();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials() {
  return grpc::InsecureServerCredentials();
}

Result<std::string> GrpcTarget(const std::string& address) {
  if (address.empty()) return Status::Error("controller address: empty");
  if (address.rfind("unix:", 0) == 0) {
    std::string path = address.substr(5);
    while (path.rfind("//", 0) == 0) path = path.substr(1);
    if (path.empty() || path[0] != '/')
      return Status::Error("controller address \"" + address + "\": unix socket path must be absolute");
    return "unix:" + path;
  }
  if (address[0] == '/') return "unix:" + address;
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size())
    return Status::Error("controller address \"" + address + "\": expected host:port or unix:/path");
  std::string port = address.substr(colon + 1);
  for (char c : port)
    if (c < '0' || c > '9')
      return Status::Error("controller address \"" + address + "\": port \"" + port + "\" is not a number");
  int p = std::stoi(port.size() > 6 ? std::string("99999999") : port);
  if (p < 1 || p > 65535)
    return Status::Error("controller address \"" + address + "\": port " + port + " is out of range (1-65535)");
  return address;
}

Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address) {
  auto target = GrpcTarget(address);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
  return grpc::CreateCustomChannel(*target, ClientCredentials(), args);
}

}  // namespace weft::transport
