// The one place where Weft chooses gRPC transport credentials and parses
// controller addresses. Today the channel is plaintext on a trusted lab
// network; the mTLS issue replaces these two functions and nothing else.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "weft/status.hpp"

namespace weft::transport {

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials();
std::shared_ptr<grpc::ServerCredentials> ServerCredentials();

// Accepts "host:port", "[v6]:port", "unix:/path", "unix:///path" or a bare
// absolute path (a unix socket); returns the gRPC target string, or an error
// naming the address and what is wrong with it.
Result<std::string> GrpcTarget(const std::string& address);

// A channel to `address` with our credentials and keepalive settings that
// notice a dead controller within a few seconds.
Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address);

}  // namespace weft::transport
