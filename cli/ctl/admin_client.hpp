// weftctl's side of proto/weft/v1/admin.proto: a stub on a channel made by
// transport::Dial (the one place for credentials), deadlines, and the mapping
// from gRPC status to weftctl exit codes. Used by the ctl commands and the lab.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "weft/status.hpp"
#include "weft/v1/admin.grpc.pb.h"

namespace weft::cli::ctl {

struct AdminConn {
  std::string address;  // as given (shown in messages)
  // TCP: why the controller's certificate was refused, if it was (set from gRPC's threads).
  std::shared_ptr<std::mutex> rejection_mu = std::make_shared<std::mutex>();
  std::shared_ptr<std::string> rejection = std::make_shared<std::string>();
  std::string Rejection() const {
    std::lock_guard lock(*rejection_mu);
    return *rejection;
  }
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<weft::v1::Admin::Stub> stub;
};

// weftctl's client identity for a TCP controller (mutual TLS): an admin
// certificate, from --cert/--key/--ca or a credentials dir (key.pem,
// cert.pem, ca.pem: weft/credentials.hpp) given by --credentials,
// $WEFT_CREDENTIALS or ~/.weft/credentials. A unix socket needs none.
struct ClientTlsOptions {
  std::string credentials_dir;
  std::string cert, key, ca;  // override the dir's files
  std::string trust_domain = "cluster.local";
};
// The dir weftctl uses when none is given: $WEFT_CREDENTIALS, else $HOME/.weft/credentials.
std::string DefaultCredentialsDir();

// An error for a malformed address (err() EINVAL) or, for TCP, credentials
// that are missing, unreadable or expired (err() EACCES: the message says
// how to get an admin certificate). The channel connects lazily.
Result<AdminConn> ConnectAdmin(const std::string& address, const ClientTlsOptions& tls = {});

// A context whose deadline is `timeout` from now.
std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout);

// 1 for rejected input (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
// FAILED_PRECONDITION, OUT_OF_RANGE), 2 for everything else (UNAVAILABLE,
// DEADLINE_EXCEEDED, ...: the controller could not be reached or failed).
int ExitCodeFor(grpc::StatusCode code);
bool IsRejectedInput(grpc::StatusCode code);

// The message weftctl prints for a failed call: rejected input verbatim
// (the controller's "file:line:col: ..." lines), otherwise naming the
// controller and the gRPC status.
std::string DescribeRpcError(const grpc::Status& s, const std::string& what, const std::string& address);

// Calls Status until it succeeds or `timeout` passes (a controller starting up).
Status WaitControllerReady(AdminConn& conn, std::chrono::milliseconds timeout);

}  // namespace weft::cli::ctl
