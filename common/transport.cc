#include "weft/transport.hpp"

#include <grpcpp/support/client_interceptor.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace weft::transport {

namespace {

std::string Mib(long long bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  return std::to_string(bytes) + " bytes";
}

// Rewrites the status of every call made on a Dial channel (ExplainLimit).
class LimitInterceptor : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS)) {
      grpc::Status* st = methods->GetRecvStatus();
      if (st && !st->ok()) *st = ExplainLimit(*st);
    }
    methods->Proceed();
  }
};

class LimitInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new LimitInterceptor;
  }
};

}  // namespace

void ConfigureServer(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
}

grpc::Status ExplainLimit(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return status;
  const std::string& m = status.error_message();
  // gRPC: "Received message larger than max (N vs. M)" / "Sent message larger than max (N vs. M)".
  auto at = m.find("message larger than max (");
  if (at == std::string::npos) return status;
  long long size = 0, limit = 0;
  if (std::sscanf(m.c_str() + at, "message larger than max (%lld vs. %lld)", &size, &limit) != 2) return status;
  std::string who = m.rfind("Sent", at) != std::string::npos ? "sending" : "receiving";
  std::string text = "gRPC message of " + std::to_string(size) + " bytes exceeds the limit of " + Mib(limit) +
                     " (" + who + "; Weft's limit is " + Mib(kMaxMessageBytes) +
                     ", weft::transport::kMaxMessageBytes";
  text += limit < kMaxMessageBytes ? "; the peer enforces a smaller one, gRPC's default is 4 MiB)"
                                   : "; split the input)";
  return grpc::Status(status.error_code(), text, status.error_details());
}

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
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<LimitInterceptorFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(*target, ClientCredentials(), args,
                                                                  std::move(interceptors));
}

}  // namespace weft::transport
