// A unified diff of two texts, line by line (diff -u style, 3 lines of
// context), for Admin.Diff.
#pragma once

#include <string>

namespace weft::controller {

// "" when equal. Headers are "--- from_label" / "+++ to_label".
std::string UnifiedDiff(const std::string& from, const std::string& to, const std::string& from_label,
                        const std::string& to_label, int context = 3);

}  // namespace weft::controller
