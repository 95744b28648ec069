// How weftctl prints what the controller answers: kubectl-style tables for
// `get` and `status`, change lines for `apply`/`delete`, diagnostics as
// "file:line:col: Kind ns/name: field: problem". Pure: no I/O, no RPC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/v1/admin.pb.h"

namespace weft::cli::ctl {

enum class GetFormat { kTable, kWide, kYaml, kJson };

// A table; `all_namespaces` adds the NAMESPACE column, `now_unix` ages
// metadata.creationTimestamp (AGE column; RESOURCE-VERSION when the objects
// carry no timestamp).
std::string FormatGetTable(const std::vector<weft::v1::Resource>& rs, bool all_namespaces, bool wide,
                           int64_t now_unix);
std::string FormatGetYaml(const std::vector<weft::v1::Resource>& rs, bool single);
std::string FormatGetJson(const std::vector<weft::v1::Resource>& rs, bool single);

// "virtualservice.networking.istio.io/reviews configured" (+ " (dry run)").
std::string FormatChange(const weft::v1::ResourceChange& c, bool dry_run);

// "file:line:col: Kind ns/name: field: message" (parts that are unknown are left out).
std::string FormatDiagnostic(const weft::v1::Diagnostic& d);

// NODE STATE SENT ACKED AGENT-VERSION REASON, one line per node; every cell
// on one line and capped (64 bytes, 200 for REASON), so a huge field from
// the controller never pads the table.
std::string FormatStatus(const weft::v1::StatusResponse& s);

// kubectl's age: 42s, 5m, 3h, 2d.
std::string FormatAge(int64_t seconds);

// Columns padded to the widest cell, separated by three spaces (kubectl).
std::string RenderTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace weft::cli::ctl
