// The agent's side of weft.v1.ConfigDiscovery.Stream.
//
// ControllerClient owns the gRPC stream on its own thread ("controller"):
//
//   ┌────────────┐  hello ok   ┌───────────┐ first message ┌───────────┐
//   │ CONNECTING │───────────▶│ HELLO SENT │──────────────▶│ STREAMING │
//   └────────────┘             └───────────┘                └───────────┘
//         ▲  stream error / Read false / controller gone           │
//         └──── BACKOFF (100 ms .. 5 s, x2 per failure, ±20 %) ◀───┘
//
// Every stream is a new "epoch". Its events (Connected on the first message,
// each Message, Disconnected with the gRPC status) go, in order, into a queue
// that the main thread drains when the eventfd fd() is readable. The main
// thread writes ACK/NACKs with Send(epoch, ...): a reply for a stream that has
// since ended is dropped (the next stream starts with a fresh snapshot). The
// thread never touches the maps: while disconnected they keep the last good
// state untouched.
//
// Threads: the controller thread only Reads (and writes the hello before the
// stream is published); the main thread only Writes, under a mutex that the
// controller thread also takes to retire the stream before Finish(). That is
// the one-reader/one-writer concurrency the gRPC sync API allows.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "weft/status.hpp"
#include "weft/unique_fd.hpp"
#include "weft/v1/config.grpc.pb.h"
#include "weft/v1/config.pb.h"

namespace weft::agent {

// Exponential backoff with jitter: min, 2*min, ... capped at max; each delay
// is scaled by a random factor in [0.8, 1.2] and clamped to [min, max].
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max);
  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }

 private:
  std::chrono::milliseconds min_, max_;
  int attempt_ = 0;
  std::mt19937 rng_;
};

class ControllerClient {
 public:
  struct Event {
    enum Kind { kConnected, kMessage, kDisconnected } kind;
    uint64_t epoch = 0;
    v1::ControllerMessage msg;  // kMessage
    std::string error;          // kDisconnected: the stream's end status
  };

  // `hello` is sent first on every stream, with applied_version and store_id
  // updated from SetApplied.
  ControllerClient(std::string address, std::shared_ptr<grpc::Channel> channel, v1::NodeHello hello,
                   std::chrono::milliseconds backoff_min, std::chrono::milliseconds backoff_max);
  ~ControllerClient();
  ControllerClient(const ControllerClient&) = delete;
  ControllerClient& operator=(const ControllerClient&) = delete;

  static Result<std::unique_ptr<ControllerClient>> Create(const std::string& address, v1::NodeHello hello,
                                                          std::chrono::milliseconds backoff_min,
                                                          std::chrono::milliseconds backoff_max);

  void Start();
  void Stop();  // cancels the stream, joins the thread; idempotent

  int fd() const { return event_fd_.get(); }
  // Every queued event, oldest first (resets fd()).
  std::vector<Event> Drain();

  void SetApplied(uint64_t version, const std::string& store_id) {
    std::lock_guard lk(applied_mu_);
    hello_.set_applied_version(version);
    hello_.set_store_id(store_id);
  }
  // Writes on the stream of `epoch` if it is still open; false otherwise.
  bool Send(uint64_t epoch, const v1::AgentMessage& msg);

 private:
  void Run();
  void Push(Event ev);

  const std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ConfigDiscovery::Stub> stub_;
  std::mutex applied_mu_;  // hello_ (SetApplied on the main thread, read by Run)
  v1::NodeHello hello_;
  Backoff backoff_;
  UniqueFd event_fd_;

  std::mutex queue_mu_;
  std::deque<Event> queue_;

  // Stop and the live call's context (to cancel it).
  std::mutex state_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  grpc::ClientContext* ctx_ = nullptr;
  // The live stream for Send; retired under this mutex before Finish().
  std::mutex write_mu_;
  grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>* stream_ = nullptr;
  uint64_t stream_epoch_ = 0;

  std::thread thread_;
};

}  // namespace weft::agent
