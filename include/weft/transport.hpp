// The one place where Weft chooses gRPC transport settings: credentials,
// message size limits, keepalive, and parsing controller addresses. Today the
// channel is plaintext on a trusted lab network; the mTLS issue replaces the
// two credential functions and nothing else.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "weft/status.hpp"

namespace weft::transport {

// The largest gRPC message Weft sends or accepts, both directions, client and
// server (gRPC's default receive limit is 4 MiB). Sized for the big messages
// on purpose: an Admin Apply of a whole cluster's YAML (10,000 services with
// 100,000 WorkloadEntries is ~21 MB) and a node's full snapshot (~3.8 MB at
// that scale, growing linearly). Beyond it a call fails with
// RESOURCE_EXHAUSTED and a message naming this limit (see Dial).
inline constexpr int kMaxMessageBytes = 256 * 1024 * 1024;

// Applies the server-side settings (message limits) to a builder.
void ConfigureServer(grpc::ServerBuilder& builder);

// `status` with its message explained if it is gRPC's "message larger than
// max" (names kMaxMessageBytes and the sizes); otherwise unchanged. Dial's
// channels apply it to every call's status already.
grpc::Status ExplainLimit(const grpc::Status& status);

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials();
std::shared_ptr<grpc::ServerCredentials> ServerCredentials();

// Accepts "host:port", "[v6]:port", "unix:/path", "unix:///path" or a bare
// absolute path (a unix socket); returns the gRPC target string, or an error
// naming the address and what is wrong with it.
Result<std::string> GrpcTarget(const std::string& address);

// A channel to `address` with our credentials, message limits
// (kMaxMessageBytes both ways; an oversize message fails naming the limit)
// and keepalive settings that notice a dead controller within a few seconds.
Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address);

}  // namespace weft::transport
