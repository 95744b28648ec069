#include "cli/ctl/format.hpp"

#include <time.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/ctl/kinds.hpp"

namespace weft::cli::ctl {

namespace {

using nlohmann::json;

json Parse(const weft::v1::Resource& r) {
  try {
    return json::parse(r.json());
  } catch (const std::exception&) {
    return json::object();
  }
}

const json* Path(const json& j, std::initializer_list<const char*> keys) {
  const json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object() || !cur->contains(k)) return nullptr;
    cur = &(*cur)[k];
  }
  return cur;
}

std::string Str(const json& j, std::initializer_list<const char*> keys, const std::string& def = "") {
  const json* v = Path(j, keys);
  if (!v || v->is_null()) return def;
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

std::string JoinStrings(const json* arr, const std::string& def = "<none>") {
  if (!arr || !arr->is_array() || arr->empty()) return def;
  std::string out;
  for (const auto& e : *arr) out += (out.empty() ? "" : ",") + (e.is_string() ? e.get<std::string>() : e.dump());
  return out;
}

std::string Labels(const json* m) {
  if (!m || !m->is_object() || m->empty()) return "<none>";
  std::string out;
  for (const auto& [k, v] : m->items()) out += (out.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

int64_t ParseTimestamp(const std::string& ts) {
  struct tm tm {};
  if (ts.empty() || !strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return -1;
  return timegm(&tm);
}

// Kind-specific columns: headers (normal, then wide-only) and cells.
struct Columns {
  std::vector<std::string> head, wide_head;
};

Columns KindColumns(const std::string& kind) {
  if (kind == "Service") return {{"TYPE", "CLUSTER-IP(S)", "PORTS"}, {"SELECTOR"}};
  if (kind == "VirtualService") return {{"GATEWAYS", "HOSTS"}, {"ROUTES"}};
  if (kind == "DestinationRule") return {{"HOST"}, {"SUBSETS"}};
  if (kind == "Gateway") return {{"SERVERS"}, {"SELECTOR"}};
  if (kind == "ServiceEntry") return {{"HOSTS", "LOCATION", "RESOLUTION"}, {"PORTS"}};
  if (kind == "WorkloadEntry") return {{"ADDRESS", "NODE"}, {"SERVICE-ACCOUNT", "LABELS"}};
  if (kind == "AuthorizationPolicy") return {{"ACTION", "RULES"}, {"SELECTOR"}};
  if (kind == "PeerAuthentication") return {{"MODE"}, {"SELECTOR"}};
  if (kind == "Deployment") return {{"REPLICAS"}, {"SELECTOR"}};
  if (kind == "ServiceAccount" || kind == "Namespace") return {};
  return {};
}

std::vector<std::string> KindCells(const std::string& kind, const json& o, bool wide) {
  std::vector<std::string> c, w;
  if (kind == "Service") {
    c.push_back(Str(o, {"spec", "type"}, "ClusterIP"));
    std::string ips = JoinStrings(Path(o, {"spec", "clusterIPs"}), "");
    if (ips.empty()) ips = Str(o, {"spec", "clusterIP"}, "<none>");
    c.push_back(ips);
    std::string ports;
    if (const json* ps = Path(o, {"spec", "ports"}); ps && ps->is_array())
      for (const auto& p : *ps)
        ports += (ports.empty() ? "" : ",") + Str(p, {"port"}) + "/" + Str(p, {"protocol"}, "TCP");
    c.push_back(ports.empty() ? "<none>" : ports);
    w.push_back(Labels(Path(o, {"spec", "selector"})));
  } else if (kind == "VirtualService") {
    c.push_back(JoinStrings(Path(o, {"spec", "gateways"})));
    c.push_back(JoinStrings(Path(o, {"spec", "hosts"})));
    size_t n = 0;
    for (const char* proto : {"http", "tcp", "tls"})
      if (const json* r = Path(o, {"spec", proto}); r && r->is_array()) n += r->size();
    w.push_back(std::to_string(n));
  } else if (kind == "DestinationRule") {
    c.push_back(Str(o, {"spec", "host"}, "<none>"));
    std::string subsets;
    if (const json* ss = Path(o, {"spec", "subsets"}); ss && ss->is_array())
      for (const auto& s : *ss) subsets += (subsets.empty() ? "" : ",") + Str(s, {"name"});
    w.push_back(subsets.empty() ? "<none>" : subsets);
  } else if (kind == "Gateway") {
    const json* s = Path(o, {"spec", "servers"});
    c.push_back(std::to_string(s && s->is_array() ? s->size() : 0));
    w.push_back(Labels(Path(o, {"spec", "selector"})));
  } else if (kind == "ServiceEntry") {
    c.push_back(JoinStrings(Path(o, {"spec", "hosts"})));
    c.push_back(Str(o, {"spec", "location"}, "MESH_EXTERNAL"));
    c.push_back(Str(o, {"spec", "resolution"}, "NONE"));
    std::string ports;
    if (const json* ps = Path(o, {"spec", "ports"}); ps && ps->is_array())
      for (const auto& p : *ps) ports += (ports.empty() ? "" : ",") + Str(p, {"number"}) + "/" + Str(p, {"protocol"}, "TCP");
    w.push_back(ports.empty() ? "<none>" : ports);
  } else if (kind == "WorkloadEntry") {
    c.push_back(Str(o, {"spec", "address"}, "<none>"));
    c.push_back(Str(o, {"metadata", "annotations", "weft.io/node"}, "<none>"));
    w.push_back(Str(o, {"spec", "serviceAccount"}, "<none>"));
    w.push_back(Labels(Path(o, {"spec", "labels"})));
  } else if (kind == "AuthorizationPolicy") {
    c.push_back(Str(o, {"spec", "action"}, "ALLOW"));
    const json* r = Path(o, {"spec", "rules"});
    c.push_back(std::to_string(r && r->is_array() ? r->size() : 0));
    w.push_back(Labels(Path(o, {"spec", "selector", "matchLabels"})));
  } else if (kind == "PeerAuthentication") {
    c.push_back(Str(o, {"spec", "mtls", "mode"}, "<unset>"));
    w.push_back(Labels(Path(o, {"spec", "selector", "matchLabels"})));
  } else if (kind == "Deployment") {
    c.push_back(Str(o, {"spec", "replicas"}, "1"));
    w.push_back(Labels(Path(o, {"spec", "selector", "matchLabels"})));
  }
  if (wide) c.insert(c.end(), w.begin(), w.end());
  return c;
}

}  // namespace

std::string RenderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.resize(i + 1, 0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string FormatAge(int64_t s) {
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 3600 * 2) return std::to_string(s / 60) + "m";
  if (s < 86400 * 2) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string FormatGetTable(const std::vector<weft::v1::Resource>& rs, bool all_namespaces, bool wide,
                           int64_t now_unix) {
  // One table per kind (a list may mix kinds only if the controller does so).
  std::string out;
  std::vector<std::string> kinds;
  for (const auto& r : rs)
    if (std::find(kinds.begin(), kinds.end(), r.kind()) == kinds.end()) kinds.push_back(r.kind());
  for (const auto& kind : kinds) {
    std::vector<const weft::v1::Resource*> mine;
    std::vector<json> objs;
    bool have_ts = true;
    for (const auto& r : rs)
      if (r.kind() == kind) {
        mine.push_back(&r);
        objs.push_back(Parse(r));
        have_ts = have_ts && ParseTimestamp(Str(objs.back(), {"metadata", "creationTimestamp"})) >= 0;
      }
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> head;
    if (all_namespaces) head.push_back("NAMESPACE");
    head.push_back("NAME");
    Columns cols = KindColumns(kind);
    head.insert(head.end(), cols.head.begin(), cols.head.end());
    if (wide) head.insert(head.end(), cols.wide_head.begin(), cols.wide_head.end());
    head.push_back(have_ts ? "AGE" : "RESOURCE-VERSION");
    rows.push_back(head);
    for (size_t i = 0; i < mine.size(); ++i) {
      std::vector<std::string> row;
      if (all_namespaces) row.push_back(mine[i]->namespace_());
      std::string name = mine[i]->name();
      if (kinds.size() > 1) name = DisplayKind(kind) + "/" + name;
      row.push_back(name);
      auto cells = KindCells(kind, objs[i], wide);
      row.insert(row.end(), cells.begin(), cells.end());
      row.push_back(have_ts ? FormatAge(now_unix - ParseTimestamp(Str(objs[i], {"metadata", "creationTimestamp"})))
                            : std::to_string(mine[i]->resource_version()));
      rows.push_back(row);
    }
    if (!out.empty()) out += "\n";
    out += RenderTable(rows);
  }
  return out;
}

std::string FormatGetYaml(const std::vector<weft::v1::Resource>& rs, bool single) {
  if (single && rs.size() == 1) return rs[0].yaml();
  std::string out;
  for (const auto& r : rs) {
    out += "---\n" + r.yaml();
    if (!r.yaml().empty() && r.yaml().back() != '\n') out += "\n";
  }
  return out;
}

std::string FormatGetJson(const std::vector<weft::v1::Resource>& rs, bool single) {
  if (single && rs.size() == 1) return Parse(rs[0]).dump(4) + "\n";
  json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", json::array()}};
  for (const auto& r : rs) list["items"].push_back(Parse(r));
  return list.dump(4) + "\n";
}

std::string FormatChange(const weft::v1::ResourceChange& c, bool dry_run) {
  return DisplayKind(c.ref().kind()) + "/" + c.ref().name() + " " + c.action() + (dry_run ? " (dry run)" : "");
}

std::string FormatDiagnostic(const weft::v1::Diagnostic& d) {
  std::string out = d.file().empty() ? "<input>" : d.file();
  if (d.line() > 0) {
    out += ":" + std::to_string(d.line());
    if (d.column() > 0) out += ":" + std::to_string(d.column());
  }
  out += ": ";
  if (!d.resource().empty()) out += d.resource() + ": ";
  if (!d.field().empty()) out += d.field() + ": ";
  out += d.message();
  if (!d.code().empty()) out += " [" + d.code() + "]";
  return out;
}

namespace {

// One table cell: on one line, at most `max` bytes (cut at a character, "...").
// What a controller sends is not trusted to be small: a node name or version
// of a megabyte must not pad every row of the table to a megabyte.
std::string Cell(const std::string& text, size_t max) {
  std::string out = text.substr(0, std::min(text.size(), max));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (text.size() <= max) return out;
  out.resize(max - 3);
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xc0) == 0x80) out.pop_back();
  if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();
  return out + "...";
}

}  // namespace

std::string FormatStatus(const weft::v1::StatusResponse& s) {
  constexpr size_t kColumn = 64, kReason = 200;
  std::vector<std::vector<std::string>> rows = {{"NODE", "STATE", "SENT", "ACKED", "AGENT-VERSION", "REASON"}};
  for (const auto& n : s.nodes()) {
    // The NACK reason, or why the node is in a state such as BEHIND.
    std::string reason = n.state() == "NACKED" || n.state_reason().empty() ? n.nack_reason() : n.state_reason();
    rows.push_back({Cell(n.node(), kColumn), Cell(n.state(), kColumn), std::to_string(n.last_sent_version()),
                    std::to_string(n.last_acked_version()),
                    n.agent_version().empty() ? "<unknown>" : Cell(n.agent_version(), kColumn),
                    reason.empty() ? "<none>" : Cell(reason, kReason)});
  }
  return RenderTable(rows);
}

}  // namespace weft::cli::ctl
