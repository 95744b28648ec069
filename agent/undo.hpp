// Changes to a std::map that can be taken back: the node state (node_state.hpp)
// takes a push in place and, if the push is refused or NACKed, returns to the
// state before it without ever having copied the whole state.
//
//   UndoLog<M> log;
//   log.Save(m, key);  m[key] = v;   // Save before every change of a key
//   log.Revert(m);                  // m as it was before the first Save
//   log.Clear();                    // keep the changes (commit)
//
// Only the first Save of a key records its value, so a key changed twice is
// restored to what it held before both.
#pragma once

#include <map>
#include <optional>
#include <utility>

namespace weft::agent {

template <typename Map>
class UndoLog {
 public:
  using Key = typename Map::key_type;
  using Value = typename Map::mapped_type;

  void Save(const Map& m, const Key& k) {
    if (saved_.count(k)) return;
    auto it = m.find(k);
    saved_.emplace(k, it == m.end() ? std::nullopt : std::optional<Value>(it->second));
  }
  void Revert(Map& m) {
    for (auto& [k, v] : saved_) {
      if (v)
        m.insert_or_assign(k, std::move(*v));
      else
        m.erase(k);
    }
    saved_.clear();
  }
  void Clear() { saved_.clear(); }
  bool empty() const { return saved_.empty(); }

 private:
  std::map<Key, std::optional<Value>, typename Map::key_compare> saved_;
};

}  // namespace weft::agent
