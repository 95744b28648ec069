// A reference for the agent's node state (agent/node_state.hpp): a delta
// applied to a whole weft.v1.NodeConfig, object by object, as the wire
// format means it (removals, then upserts; the last upsert of a key wins;
// removals of unknown keys are ignored). Converting the result as a snapshot
// must give what the agent's incremental conversion gives.
#pragma once

#include <string>
#include <utility>

#include "weft/v1/config.pb.h"

namespace weft::testing {

template <typename List, typename Key, typename KeyOf>
void RemoveFrom(List* list, const Key& key, KeyOf key_of) {
  for (int i = 0; i < list->size();)
    if (key_of(list->Get(i)) == key)
      list->DeleteSubrange(i, 1);
    else
      ++i;
}
template <typename List, typename T, typename KeyOf>
void UpsertInto(List* list, const T& item, KeyOf key_of) {
  for (auto& x : *list)
    if (key_of(x) == key_of(item)) {
      x = item;
      return;
    }
  *list->Add() = item;
}

inline void ApplyDeltaToConfig(v1::NodeConfig* c, const v1::NodeConfigDelta& d) {
  auto name = [](const auto& x) { return x.namespace_() + "/" + x.name(); };
  auto prefix = [](const v1::IdentityCacheEntry& e) { return std::make_pair(e.prefix(), e.prefix_len()); };
  auto id = [](const auto& x) { return x.id(); };
  for (const auto& n : d.removed_services()) RemoveFrom(c->mutable_services(), n, name);
  for (const auto& n : d.removed_workloads()) RemoveFrom(c->mutable_local_workloads(), n, name);
  for (const auto& e : d.removed_identity_cache()) RemoveFrom(c->mutable_identity_cache(), prefix(e), prefix);
  for (uint32_t i : d.removed_identities()) RemoveFrom(c->mutable_identities(), i, id);
  for (uint32_t i : d.removed_policy_names()) RemoveFrom(c->mutable_policy_names(), i, id);
  for (const auto& s : d.upserted_services()) UpsertInto(c->mutable_services(), s, name);
  for (const auto& w : d.upserted_workloads()) UpsertInto(c->mutable_local_workloads(), w, name);
  for (const auto& e : d.upserted_identity_cache()) UpsertInto(c->mutable_identity_cache(), e, prefix);
  for (const auto& i : d.upserted_identities()) UpsertInto(c->mutable_identities(), i, id);
  for (const auto& p : d.upserted_policy_names()) UpsertInto(c->mutable_policy_names(), p, id);
}

}  // namespace weft::testing
