// The agent's node identity (spiffe://<td>/weft/node/<node>) for the
// controller's mutual TLS, kept in a credentials dir (weft/credentials.hpp;
// default <state-dir>/<node>/credentials):
//
//   first start   no usable identity in DIR: read --join-token-file (never a
//                 token on argv: /proc/PID/cmdline is world-readable), make
//                 the key here (key.pem 0600: it never leaves the node), send
//                 a CSR with the token to NodeIdentity.Join over TLS that
//                 verifies the controller against the CA the token pins, and
//                 keep the certificate and the CA bundle it returns.
//   later         the identity in DIR (checked: this node's SPIFFE id, chains
//                 to the bundle, unexpired) is used as is; no token needed.
//   renewal       a thread ("credentials") renews over mutual TLS at half the
//                 certificate's lifetime (same key, new certificate); the
//                 stream's channel re-reads the files for its next handshake.
//
// Every connection verifies the controller: its chain against the bundle
// and its SPIFFE id (spiffe://<td>/weft/controller). A refusal is logged with
// why, once per connection attempt; nothing is read from such a server.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "weft/clock.hpp"
#include "weft/credentials.hpp"
#include "weft/pki.hpp"
#include "weft/status.hpp"

namespace weft::agent {

struct NodeCredentialsOptions {
  std::string controller;  // address (TCP)
  std::string node;
  std::string trust_domain = "cluster.local";
  std::string dir;              // the credentials dir
  std::string join_token_file;  // "" = none
  std::chrono::seconds refresh{5};  // how often the channel's provider re-reads DIR
  // When certificates are valid and renewals due (weft/clock.hpp); nullptr:
  // the system clock. Must outlive the credentials.
  const Clock* clock = nullptr;
};

class NodeCredentials {
 public:
  // Looks at DIR: ready() if it holds a usable identity for this node; else
  // the token file must be given (checked now: bounded, well-formed). An
  // error names the dir or file and what to do.
  static Result<std::unique_ptr<NodeCredentials>> Open(NodeCredentialsOptions opts);
  ~NodeCredentials();  // stops the renewal thread

  bool ready() const;
  // One attempt to join with the token. err() EACCES: refused for good (the
  // message says why: replayed, expired, unknown, another node's or another
  // CA's token); anything else: try again later (controller unreachable or
  // refused as an impostor).
  Status Join();
  // One renewal over mutual TLS.
  Status Renew();
  // Starts the renewal thread (after the first successful connection is not
  // required: it starts whenever the identity is ready).
  void StartRenewal();

  // The stream's credentials: DIR's files (re-read every `refresh`) and the
  // controller's SPIFFE id.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;
  pki::TimePoint renew_at() const;
  const NodeCredentialsOptions& options() const { return opts_; }
  pki::TimePoint not_after() const;

 private:
  explicit NodeCredentials(NodeCredentialsOptions opts) : opts_(std::move(opts)), paths_{opts_.dir} {}
  // DIR's identity if usable now (else why not).
  Result<credentials::Identity> Check() const;
  Result<pki::PrivateKey> LoadOrMakeKey() const;
  Status Store(const std::string& chain_pem, const std::string& bundle_pem, const pki::PrivateKey& key,
               const std::string& must_contain_root);
  void RenewLoop();
  void OnReject(const std::string& why) const;
  const Clock& clock() const { return opts_.clock ? *opts_.clock : SystemClock(); }

  const NodeCredentialsOptions opts_;
  const credentials::Paths paths_;
  mutable std::mutex mu_;
  bool ready_ = false;
  pki::TimePoint renew_at_{}, not_after_{};
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread renewer_;
};

}  // namespace weft::agent
