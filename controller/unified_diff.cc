#include "controller/unified_diff.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

namespace weft::controller {
namespace {

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(s);
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

struct Edit {
  char op;  // ' ', '-', '+'
  size_t a, b;  // line index in from / to (valid for ' ' and '-' / ' ' and '+')
};

}  // namespace

std::string UnifiedDiff(const std::string& from, const std::string& to, const std::string& from_label,
                        const std::string& to_label, int context) {
  if (from == to) return "";
  const auto a = Lines(from), b = Lines(to);
  const size_t n = a.size(), m = b.size();
  // LCS table (objects are small: YAML of one resource).
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<Edit> edits;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      edits.push_back({' ', i++, j++});
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      edits.push_back({'-', i++, j});  // removals first, as diff -u
    } else {
      edits.push_back({'+', i, j++});
    }
  }
  std::string out = "--- " + from_label + "\n+++ " + to_label + "\n";
  const size_t ctx = static_cast<size_t>(context);
  size_t k = 0;
  while (k < edits.size()) {
    // Next change.
    size_t c = k;
    while (c < edits.size() && edits[c].op == ' ') ++c;
    if (c == edits.size()) break;
    size_t start = c >= ctx ? c - ctx : 0;
    start = std::max(start, k);
    // Extend the hunk while changes are within 2*ctx of each other.
    size_t end = c;
    size_t last_change = c;
    while (end < edits.size()) {
      if (edits[end].op != ' ') last_change = end;
      else if (end - last_change > 2 * ctx) break;
      ++end;
    }
    end = std::min(edits.size(), last_change + ctx + 1);
    size_t a_start = edits[start].a, b_start = edits[start].b, a_len = 0, b_len = 0;
    std::string body;
    for (size_t e = start; e < end; ++e) {
      const auto& ed = edits[e];
      if (ed.op == ' ') {
        body += " " + a[ed.a] + "\n";
        ++a_len;
        ++b_len;
      } else if (ed.op == '-') {
        body += "-" + a[ed.a] + "\n";
        ++a_len;
      } else {
        body += "+" + b[ed.b] + "\n";
        ++b_len;
      }
    }
    out += "@@ -" + std::to_string(a_len ? a_start + 1 : a_start) + "," + std::to_string(a_len) + " +" +
           std::to_string(b_len ? b_start + 1 : b_start) + "," + std::to_string(b_len) + " @@\n" + body;
    k = end;
  }
  return out;
}

}  // namespace weft::controller
