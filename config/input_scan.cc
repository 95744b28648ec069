#include "config/input_scan.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "config/resources.hpp"

namespace weft::config {
namespace {

std::string CodePoint(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", cp);
  return buf;
}

std::string ByteHex(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

// YAML 1.2 c-printable: tab, LF, CR, x20-x7E, NEL, xA0-xD7FF, xE000-xFFFD, x10000-x10FFFF.
bool Printable(uint32_t cp) {
  if (cp == 0x9 || cp == 0xA || cp == 0xD || cp == 0x85) return true;
  if (cp >= 0x20 && cp <= 0x7E) return true;
  if (cp >= 0xA0 && cp <= 0xD7FF) return true;
  if (cp >= 0xE000 && cp <= 0xFFFD) return true;
  return cp >= 0x10000 && cp <= 0x10FFFF;
}

std::string ControlName(uint32_t cp) {
  static const char* const kC0[] = {"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS",  "HT", "LF",
                                    "VT",  "FF",  "CR",  "SO",  "SI",  "DLE", "DC1", "DC2", "DC3", "DC4", "NAK",
                                    "SYN", "ETB", "CAN", "EM",  "SUB", "ESC", "FS",  "GS",  "RS",  "US"};
  if (cp < 0x20) return CodePoint(cp) + " (" + kC0[cp] + ")";
  if (cp == 0x7F) return CodePoint(cp) + " (DEL)";
  return CodePoint(cp);
}

// Decodes one UTF-8 sequence at text[i]; nullopt if it is not well-formed
// (overlong forms, surrogates and values above U+10FFFF included).
std::optional<uint32_t> DecodeUtf8(std::string_view text, size_t i, size_t& len) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char c = b(0);
  uint32_t cp = 0;
  uint32_t min = 0;
  if (c < 0x80) {
    len = 1;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (i + len > text.size()) return std::nullopt;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return cp;
}

// Thrown by the scanner to stop yaml-cpp's parser at the first refusal.
struct Refused {};

class StructureScan : public YAML::EventHandler {
 public:
  StructureScan(std::string_view text, Diagnostics& diags, size_t max_documents)
      : text_(text), diags_(diags), max_documents_(max_documents) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp 0.7 (Debian's) starts a document at a token it cannot place
    // (a ',' outside [...] or {...}) without consuming it: its LoadAll then
    // adds an empty document there forever, growing until memory runs out
    // (yaml-cpp issue 1040, fixed upstream in 0.8). A document that starts
    // where the previous one did is that loop: stop it here.
    if (documents_ > 0 && mark.pos == doc_start_.pos) {
      const char c = mark.pos >= 0 && static_cast<size_t>(mark.pos) < text_.size() ? text_[mark.pos] : '?';
      Refuse(mark, c == ','
                       ? std::string("',' outside a flow collection: it separates entries only inside [...] or {...}")
                       : "the parser cannot go on from here (" + ByteHex(static_cast<unsigned char>(c)) + ")");
    }
    ++documents_;
    doc_ = Cost{};
    alias_nodes_ = 0;
    anchors_.clear();
    names_.clear();
    open_.clear();
    doc_start_ = mark;
    if (documents_ > max_documents_) {
      Refuse(mark, "more than " + std::to_string(max_documents_) + " documents in one request (the limit)");
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Leaf(mark, anchor, 0); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    Leaf(mark, anchor, value.size());
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor == 0 || anchor > anchors_.size()) return;  // yaml-cpp refuses unknown anchors itself
    const std::optional<Cost>& target = anchors_[anchor - 1];
    if (!target) Refuse(mark, "alias " + AliasName(anchor) + " refers to a node that contains it (a cycle)");
    alias_nodes_ += target->nodes;
    if (alias_nodes_ > kMaxAliasNodes) {
      Refuse(mark, "alias " + AliasName(anchor) + " expands to " + std::to_string(target->nodes) +
                       " nodes, " + std::to_string(alias_nodes_) + " added by aliases so far: at most " +
                       std::to_string(kMaxAliasNodes) + " per document (the limit)");
    }
    Add(*target);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { Close(); }
  void OnAnchor(const YAML::Mark&, const std::string& name) override { names_.push_back(name); }

 private:
  // A node's size with its aliases expanded: nodes, and bytes as in its JSON
  // (a scalar's text and its quotes and separator; a collection's brackets).
  struct Cost {
    uint64_t nodes = 0;
    uint64_t bytes = 0;
  };
  struct OpenNode {
    YAML::anchor_t anchor;
    Cost at_start;
  };

  [[noreturn]] void Refuse(const YAML::Mark& mark, const std::string& message) {
    diags_.Add(Location{std::max(mark.line, 0), std::max(mark.column, 0)}, "document " + std::to_string(documents_),
               message);
    throw Refused{};
  }

  // yaml-cpp numbers anchors 1, 2, ... per document in the order it meets them.
  std::string AliasName(YAML::anchor_t anchor) const {
    return anchor <= names_.size() ? "*" + names_[anchor - 1] : "*(anchor " + std::to_string(anchor) + ")";
  }

  void Define(YAML::anchor_t anchor, std::optional<Cost> cost) {
    if (anchor == 0) return;
    if (anchors_.size() < anchor) anchors_.resize(anchor);
    anchors_[anchor - 1] = cost;
  }

  void Add(const Cost& c) {
    doc_.nodes += c.nodes;
    doc_.bytes += c.bytes;
    if (doc_.bytes > kMaxObjectBytes) {
      Refuse(doc_start_, TooLargeMessage());
    }
  }

  void Leaf(const YAML::Mark&, YAML::anchor_t anchor, size_t bytes) {
    Cost c{1, bytes + 3};
    Add(c);
    Define(anchor, c);
  }

  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (static_cast<int>(open_.size()) >= kMaxDepth) {
      Refuse(mark, TooDeepMessage());
    }
    Define(anchor, std::nullopt);  // in progress: an alias to it now would be a cycle
    open_.push_back({anchor, doc_});
    Add(Cost{1, 2});
  }

  void Close() {
    if (open_.empty()) return;
    OpenNode n = open_.back();
    open_.pop_back();
    Define(n.anchor, Cost{doc_.nodes - n.at_start.nodes, doc_.bytes - n.at_start.bytes});
  }

  std::string_view text_;
  Diagnostics& diags_;
  size_t max_documents_;
  size_t documents_ = 0;
  YAML::Mark doc_start_;
  Cost doc_;
  uint64_t alias_nodes_ = 0;
  std::vector<std::optional<Cost>> anchors_;  // by anchor id - 1; nullopt while the node is open
  std::vector<std::string> names_;
  std::vector<OpenNode> open_;
};

}  // namespace

std::string TooDeepMessage() { return "nested more than " + std::to_string(kMaxDepth) + " levels deep (the limit)"; }

std::string TooLargeMessage() {
  return "larger than " + FormatBytes(kMaxObjectBytes) + " with its aliases expanded (the limit per object)";
}

bool NeedsStructureScan(std::string_view text, size_t max_documents) {
  if (text.find_first_of("&,") != std::string_view::npos) return true;
  size_t markers = 1;  // documents are at most the markers + 1
  for (size_t at = 0; at < text.size(); at = text.find('\n', at) + 1) {
    std::string_view line = text.substr(at, 3);
    if (line == "---" || line == "...") ++markers;
    if (markers > max_documents) return true;
    if (text.find('\n', at) == std::string_view::npos) break;
  }
  return false;
}

std::string FormatBytes(size_t bytes) {
  auto fmt = [](double v, const char* unit) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    std::string s = buf;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s + " " + unit;
  };
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024 / 2) == 0) return fmt(bytes / (1024.0 * 1024.0), "MiB");
  if (bytes >= 1024 && bytes % 512 == 0) return fmt(bytes / 1024.0, "KiB");
  return std::to_string(bytes) + " bytes";
}

std::string DisplayName(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size();) {
    size_t len = 1;
    auto cp = DecodeUtf8(name, i, len);
    if (cp && *cp >= 0x20 && *cp != 0x7F) {
      out.append(name.substr(i, len));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(name[i]));
      out += buf;
      len = 1;
    }
    i += len;
  }
  return out;
}

bool ScanEncoding(std::string_view text, Diagnostics& diags) {
  if (text.size() > kMaxRequestBytes) {
    diags.Add(Location{}, "input",
              std::to_string(text.size()) + " bytes is larger than " + FormatBytes(kMaxRequestBytes) +
                  " (the limit per request)");
    return false;
  }
  int line = 0;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    auto cp = DecodeUtf8(text, i, len);
    Location at{line, static_cast<int>(i - line_start)};
    if (!cp) {
      diags.Add(at, "input", "invalid UTF-8 (byte " + ByteHex(static_cast<unsigned char>(text[i])) +
                                 "): YAML text must be UTF-8");
      return false;
    }
    if (!Printable(*cp)) {
      diags.Add(at, "input", "control character " + ControlName(*cp) + " is not allowed in YAML text");
      return false;
    }
    if (*cp == '\n') {
      ++line;
      line_start = i + 1;
    }
    i += len;
  }
  return true;
}

bool ScanStructure(std::string_view text, Diagnostics& diags, size_t max_documents) {
  std::istringstream in{std::string(text)};
  StructureScan scan(text, diags, max_documents);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(scan)) {
    }
  } catch (const Refused&) {
    return false;
  } catch (const YAML::Exception&) {
    return true;  // a syntax error: the loader reports it
  }
  return true;
}

}  // namespace weft::config
