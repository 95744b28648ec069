// The typed view of a validated Resource (model.hpp), built from its
// canonical JSON: the one place that reads a resource's fields after
// validation. The JSON stays the durable format (the store keeps it, weftctl
// get shows it, and the VIP allocator writes spec.clusterIP into it), so the
// view is built from it once, where it is consumed: the compiler per upserted
// resource, the agent's file mode per load.
//
// Tolerant: the input is validated (config::ParseResources), so nothing here
// fails or throws; a field of the wrong type reads as absent. Names come from
// the Resource's key (the store's key is authoritative).
#pragma once

#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/model.hpp"
#include "config/resource.hpp"

namespace weft::config {

// monostate: a kind without a typed view (or a "Service" of another API group).
using Typed = std::variant<std::monostate, Service, WorkloadEntry, ServiceEntry, DestinationRule, VirtualService,
                           PeerAuthentication, AuthorizationPolicy>;

Typed TypedView(const Resource& r);

// An AuthorizationPolicy object alone (names from its metadata): the authz
// library's tests build policies from generated objects.
AuthorizationPolicy TypedAuthorizationPolicy(const nlohmann::json& object);

// Every resource of kind T among `all`, in order.
template <typename T>
std::vector<T> TypedAll(const std::vector<Resource>& all) {
  std::vector<T> out;
  for (const auto& r : all) {
    Typed t = TypedView(r);
    if (auto* v = std::get_if<T>(&t)) out.push_back(std::move(*v));
  }
  return out;
}

}  // namespace weft::config
