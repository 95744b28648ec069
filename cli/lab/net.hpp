// Network namespaces, veths, addresses and routes for the lab, through `ip`.
// Every link is created directly inside a namespace the lab owns (`ip -n NS
// link add A type veth peer name B netns NS2`), so no interface ever appears
// in the host namespace and names only need to be unique per namespace.
#pragma once

#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::cli::lab::net {

// `ip -n NS args...`
Status Ip(const std::string& ns, const std::vector<std::string>& args);
// Creates NS, sets lo up and turns off IPv6 DAD (addresses usable at once).
Status AddNetns(const std::string& ns);
Status DelNetns(const std::string& ns);  // a missing netns is not an error
bool NetnsExists(const std::string& ns);
std::vector<std::string> ListNetns();  // names under /run/netns
// sysctl -w inside NS (key=value pairs), via nsenter so /proc/sys is NS's.
Status Sysctl(const std::string& ns, const std::vector<std::string>& kvs);
// A veth with end `a` in netns `ns_a` and end `b` in netns `ns_b`.
Status AddVeth(const std::string& ns_a, const std::string& a, const std::string& ns_b, const std::string& b);

}  // namespace weft::cli::lab::net
