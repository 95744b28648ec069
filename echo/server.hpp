// weft-echo's server: one acceptor thread per TCP port, one thread per
// connection, one thread per UDP port. Simple by design: the lab needs a few
// hundred new connections per second and tens of long-lived ones, not more.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::echo {

struct Identity {
  std::string pod;
  std::string ns;
  std::string version;
  std::string service_account;
};

struct ServerOptions {
  Identity id;
  std::vector<uint16_t> ports;
  std::string listen = "::";  // "::" = dual-stack (IPV6_V6ONLY=0)
};

// Binds every TCP and UDP socket (so a bad port fails before anything runs),
// then starts the serving threads. Returns once all sockets listen.
Status Start(const ServerOptions& opts);

// Renders the HTTP answer body for a parsed request (exposed for unit tests).
struct HttpRequest {
  std::string method;
  std::string path;
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;
  size_t content_length = 0;
};
std::string RenderAnswer(const Identity& id, const std::string& peer, const HttpRequest& req);

}  // namespace weft::echo
