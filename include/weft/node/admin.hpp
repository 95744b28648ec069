// The agent's local admin endpoint: a unix stream socket at
// <state-dir>/<node>/agent.sock (weft/node/paths.hpp), mode 0600 in the
// node's 0700 state dir: root's, like the controller's admin socket. weftctl
// and the tests ask a running agent where its pins, state and pods are
// (instead of reading its command line out of /proc).
//
// Protocol kAdminProtocol: the client connects, writes one request line (at
// most kMaxAdminRequest bytes; "info"), and reads one JSON object (at most
// kMaxAdminAnswer bytes) until the agent closes the connection. Every answer
// carries "protocol"; a refusal is {"protocol", "error"}. The agent serves one
// connection at a time, each within kAdminDeadline (request and answer); a
// peer whose uid (SO_PEERCRED) is neither root nor the agent's own is
// answered with an error and closed, whatever the socket's mode.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

namespace weft::node {

inline constexpr uint32_t kAdminProtocol = 1;
inline constexpr size_t kMaxAdminRequest = 256;
inline constexpr size_t kMaxAdminAnswer = 64 * 1024;
inline constexpr std::chrono::milliseconds kAdminDeadline{2000};

// What `info` answers.
struct AgentInfo {
  uint32_t protocol = kAdminProtocol;
  std::string node;
  std::string pin_root;   // --pin-root (pins under <pin_root>/<node>)
  std::string state_dir;  // --state-dir (this socket, names.json under <state_dir>/<node>)
  // The network namespace of the pods' host veths: --netns, or "" for the
  // agent's own (then /proc/<pid>/ns/net).
  std::string netns;
  uint64_t pid = 0;
  std::string agent_version;
  uint32_t abi_version = 0;   // WEFT_ABI_VERSION of the agent's programs and maps
  uint32_t names_schema = 0;  // names.json schema it writes
  std::string mode;           // "file" or "controller"
  std::string source;         // the config file, or the controller's address
  uint64_t applied_version = 0;  // controller mode: the config version applied (0: none yet)
  uint64_t generation = 0;       // configs applied since the agent started
  bool healthy = false;          // as /healthz: a config applied and the programs attached
  bool controller_connected = false;
  std::string metrics;  // the metrics address ("" if disabled)
  // The netns to enter for the pods' interfaces: netns, else the agent's own.
  std::string PodNetnsPath() const { return !netns.empty() ? netns : "/proc/" + std::to_string(pid) + "/ns/net"; }
};

std::string RenderAgentInfo(const AgentInfo& info);
Result<AgentInfo> ParseAgentInfo(std::string_view text, const std::string& what);

// Asks the agent at `socket_path` for its info. err(): ENOENT/ECONNREFUSED
// when no agent serves there (none started, or it stopped), EACCES when it is
// not ours to ask, ETIMEDOUT, EPROTO for an answer this build cannot read.
Result<AgentInfo> QueryAgent(const std::string& socket_path,
                             std::chrono::milliseconds timeout = kAdminDeadline);
// One raw exchange (tests): `request` as written, the answer as read.
Result<std::string> AdminExchange(const std::string& socket_path, std::string_view request,
                                  std::chrono::milliseconds timeout = kAdminDeadline);

class AdminServer {
 public:
  using InfoFn = std::function<AgentInfo()>;
  // Makes the socket's directory private (0700, ours), replaces a stale
  // socket (one nobody answers on; anything else there is refused, and so is
  // a socket another process still serves), binds it 0600 and starts the
  // serving thread. `info` runs on that thread: it must only read what is
  // safe to read from another thread.
  static Result<std::unique_ptr<AdminServer>> Start(const std::string& socket_path, InfoFn info);
  // Stops the thread and removes the socket, and the socket's directory if
  // Start made it and it is empty (an agent that ran and stopped leaves
  // nothing behind).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;
  const std::string& path() const { return path_; }

  // The answer to one request line (exposed for unit tests).
  static std::string Respond(std::string_view request, const InfoFn& info);

 private:
  AdminServer(std::string path, UniqueFd listen_fd, UniqueFd stop_fd, ino_t ino, InfoFn info);
  void Loop();
  void Serve(UniqueFd conn);

  std::string path_;
  UniqueFd listen_fd_, stop_fd_;
  ino_t ino_ = 0;  // the socket file we bound (removed only if still ours)
  std::string made_dir_;  // the socket's directory, if Start made it
  InfoFn info_;
  std::thread thread_;
};

// Removes a stale socket at `socket_path` (nobody answers on it); one still
// served is left alone. weft-agent cleanup.
Status RemoveStaleSocket(const std::string& socket_path);

}  // namespace weft::node
