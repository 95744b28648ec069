#include "agent/datapath/tracking_map_writer.hpp"

namespace weft::datapath {

// A write that fails may have been applied in part; the view then keeps the
// previous contents for that call until the next ReadAll re-reads the kernel
// (the Reconciler re-adopts after a failed Apply).

Result<MapState> TrackingMapWriter::ReadAll() {
  auto s = inner_.ReadAll();
  if (!s.ok()) return s;
  services_ = s->services;
  backends_ = s->backends;
  slots_.clear();
  slots_.reserve(s->slots.size());
  for (const auto& [k, v] : s->slots) slots_.insert(Pack(k));
  return s;
}

Status TrackingMapWriter::UpsertServices(const std::vector<std::pair<weft_svc_key, weft_svc_val>>& kv) {
  WEFT_RETURN_IF_ERROR(inner_.UpsertServices(kv));
  for (const auto& [k, v] : kv) services_[k] = v;
  return Status::Ok();
}

Status TrackingMapWriter::DeleteServices(const std::vector<weft_svc_key>& keys) {
  WEFT_RETURN_IF_ERROR(inner_.DeleteServices(keys));
  for (const auto& k : keys) services_.erase(k);
  return Status::Ok();
}

Status TrackingMapWriter::UpsertBackends(const std::vector<std::pair<uint32_t, weft_backend>>& kv) {
  WEFT_RETURN_IF_ERROR(inner_.UpsertBackends(kv));
  for (const auto& [k, v] : kv) backends_[k] = v;
  return Status::Ok();
}

Status TrackingMapWriter::DeleteBackends(const std::vector<uint32_t>& ids) {
  WEFT_RETURN_IF_ERROR(inner_.DeleteBackends(ids));
  for (uint32_t id : ids) backends_.erase(id);
  return Status::Ok();
}

Status TrackingMapWriter::UpsertSlots(const std::vector<std::pair<weft_slot_key, uint32_t>>& kv) {
  WEFT_RETURN_IF_ERROR(inner_.UpsertSlots(kv));
  for (const auto& [k, v] : kv) slots_.insert(Pack(k));
  return Status::Ok();
}

Status TrackingMapWriter::DeleteSlots(const std::vector<weft_slot_key>& keys) {
  WEFT_RETURN_IF_ERROR(inner_.DeleteSlots(keys));
  for (const auto& k : keys) slots_.erase(Pack(k));
  return Status::Ok();
}

}  // namespace weft::datapath
