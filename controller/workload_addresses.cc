#include "controller/workload_addresses.hpp"

#include <cerrno>
#include <optional>

namespace weft::controller {
namespace {

constexpr std::string_view kKind = "WorkloadEntry";

std::optional<IpAddr> AddressOf(const config::Resource& r) {
  if (r.key.kind != kKind) return std::nullopt;
  auto spec = r.object.find("spec");
  if (spec == r.object.end() || !spec->is_object()) return std::nullopt;
  auto address = spec->find("address");
  if (address == spec->end() || !address->is_string()) return std::nullopt;
  return IpAddr::Parse(address->get<std::string>());
}

std::string Where(const config::SourcePos& p) {
  return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column > 0 ? p.column : 1);
}

}  // namespace

void WorkloadAddresses::Load(const std::vector<config::Resource>& entries) {
  std::lock_guard lock(mu_);
  owners_.clear();
  address_of_.clear();
  for (const auto& e : entries) Insert(e);
  loaded_ = true;
}

bool WorkloadAddresses::loaded() const {
  std::lock_guard lock(mu_);
  return loaded_;
}

Status WorkloadAddresses::Check(const std::vector<config::Resource>& applied) const {
  std::lock_guard lock(mu_);
  std::set<config::ResourceKey> reapplied;
  for (const auto& r : applied) {
    if (r.key.kind == kKind) reapplied.insert(r.key);
  }
  std::map<IpAddr, const config::Resource*> claimed;  // within `applied`
  std::string errors;
  for (const auto& r : applied) {
    auto ip = AddressOf(r);
    if (!ip) continue;
    std::string other;
    if (auto it = claimed.find(*ip); it != claimed.end()) {
      other = it->second->key.ToString() + " (" + Where(it->second->pos) + ")";
    } else if (auto st = owners_.find(*ip); st != owners_.end()) {
      for (const auto& k : st->second) {
        if (k != r.key && !reapplied.contains(k)) {
          other = k.ToString() + " (stored)";
          break;
        }
      }
    }
    claimed.emplace(*ip, &r);
    if (other.empty()) continue;
    if (!errors.empty()) errors += '\n';
    errors += Where(r.pos) + ": " + r.key.ToString() + ": spec.address: address " + ip->ToString() +
              " is already the address of " + other +
              ": one address, one workload (its identity); delete or move the other one first";
  }
  if (errors.empty()) return Status::Ok();
  return Status::Error(errors, EINVAL);
}

void WorkloadAddresses::Update(const WriteResult& write) {
  std::lock_guard lock(mu_);
  for (const auto& k : write.deleted) Remove(k);
  for (const auto& r : write.upserted) {
    if (r.key.kind != kKind) continue;
    Remove(r.key);
    Insert(r);
  }
}

void WorkloadAddresses::Remove(const config::ResourceKey& key) {
  auto it = address_of_.find(key);
  if (it == address_of_.end()) return;
  if (auto o = owners_.find(it->second); o != owners_.end()) {
    o->second.erase(key);
    if (o->second.empty()) owners_.erase(o);
  }
  address_of_.erase(it);
}

void WorkloadAddresses::Insert(const config::Resource& entry) {
  auto ip = AddressOf(entry);
  if (!ip) return;
  address_of_[entry.key] = *ip;
  owners_[*ip].insert(entry.key);
}

}  // namespace weft::controller
