// Shared helpers for the authz tests: YAML -> validated policies, workloads.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/resources.hpp"
#include "authz/policy.hpp"

namespace weft::authz::testing {

// Validated through the real parser, as the controller would store them.
inline std::vector<config::Resource> Resources(const std::string& yaml, const std::string& file = "<test>") {
  auto parsed = config::ParseResources(yaml, file);
  if (!parsed.ok()) throw std::runtime_error("ParseResources: " + parsed.status().message());
  return parsed.value();
}

inline std::vector<Policy> Policies(const std::string& yaml) { return ParsePolicies(Resources(yaml)); }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline IpAddr Ip(const std::string& s) {
  auto ip = IpAddr::Parse(s);
  if (!ip) throw std::runtime_error("bad ip " + s);
  return *ip;
}

inline Workload MakeWorkload(const std::string& ns, const std::string& name, const std::string& app,
                             const std::string& sa, const std::vector<std::string>& ips) {
  Workload w;
  w.ns = ns;
  w.name = name;
  if (!app.empty()) w.labels["app"] = app;
  w.service_account = sa;
  for (const auto& ip : ips) w.addresses.push_back(Ip(ip));
  return w;
}

inline Peer PeerOf(const Workload& w) {
  return Peer::FromIdentity(kDefaultTrustDomain, w.ns, w.sa(),
                            w.addresses.empty() ? std::nullopt : std::optional<IpAddr>(w.addresses.front()));
}

}  // namespace weft::authz::testing
