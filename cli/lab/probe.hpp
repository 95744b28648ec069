// Liveness checks the lab uses: agent /healthz, pod listeners, free ports,
// and finding the processes a lab started.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::cli::lab::probe {

// GET http://HOST:PORT/PATH over loopback with a timeout; the status code, or 0
// if the connection or the request failed.
int HttpGetStatus(const std::string& host_port, const std::string& path, int timeout_ms);
// The same, keeping the body (at most 4 MiB) in *body when it is not null.
int HttpGet(const std::string& host_port, const std::string& path, int timeout_ms, std::string* body);
// An unlabelled sample's value in a Prometheus text exposition ("name 3").
std::optional<double> MetricValue(const std::string& exposition, const std::string& name);
// A TCP port on 127.0.0.1 that was free a moment ago.
Result<int> FreeLoopbackPort();
// True if process `pid` has a TCP socket listening on `port` (in its netns).
bool Listens(pid_t pid, int port);
// Pids whose argv[0] ends with exe_suffix and whose argv contains `flag value`.
std::vector<pid_t> FindProcesses(const std::string& exe_suffix, const std::string& flag, const std::string& value);
// SIGTERM, wait up to timeout, then SIGKILL; only if sys::ProcessMatches.
void StopProcess(pid_t pid, const std::string& exe_suffix, int timeout_ms);
bool Alive(pid_t pid);
// The last `lines` lines of a log file, each indented by four spaces (for an error message).
std::string LogTail(const std::string& path, size_t lines);

}  // namespace weft::cli::lab::probe
