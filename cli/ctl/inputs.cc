#include "cli/ctl/inputs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/resources.hpp"

namespace fs = std::filesystem;

namespace weft::cli::ctl {

namespace {

bool IsManifest(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

// Reads at most `budget` bytes of `in`: one more is an error naming the limit.
Result<std::string> ReadBounded(std::istream& in, const std::string& name, size_t budget, size_t limit) {
  std::string out;
  char buf[64 * 1024];
  while (in) {
    in.read(buf, sizeof buf);
    size_t n = static_cast<size_t>(in.gcount());
    if (n > budget - out.size()) {
      return Status::Error("-f " + name + ": more than " + config::FormatBytes(limit) +
                               " of input (the limit per request, all files together); split it",
                           EFBIG);
    }
    out.append(buf, n);
  }
  if (in.bad()) return Status::Errno("read " + name, errno ? errno : EIO);
  return out;
}

Result<std::string> Slurp(const std::string& path, size_t budget, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno("read " + path, errno ? errno : ENOENT);
  return ReadBounded(in, path, budget, limit);
}

// "dir" + "x.yaml" keeping the user's spelling of dir ("conf/" stays "conf/x.yaml").
std::string Join(const std::string& dir, const fs::path& rel) {
  if (!dir.empty() && dir.back() == '/') return dir + rel.string();
  return dir + "/" + rel.string();
}

}  // namespace

Result<std::vector<InputFile>> ReadInputs(const std::vector<std::string>& args, bool recursive, std::istream& stdin_,
                                          size_t max_bytes) {
  std::vector<InputFile> out;
  size_t used = 0;
  // Reads one file (or stdin) into `out`, within what is left of max_bytes.
  auto add = [&](const std::string& name, Result<std::string> content) -> Status {
    if (!content.ok()) return content.status();
    if (Status st = config::CheckText(*content, name); !st.ok()) return st;
    used += content->size();
    out.push_back({name, std::move(*content)});
    return Status::Ok();
  };
  bool used_stdin = false;
  if (args.empty()) return Status::Error("no input: pass -f FILE, -f DIR or -f -");
  for (const auto& a : args) {
    if (a.empty()) return Status::Error("-f: empty file name");
    if (a == "-") {
      if (used_stdin) return Status::Error("-f -: standard input given twice");
      used_stdin = true;
      WEFT_RETURN_IF_ERROR(add("-", ReadBounded(stdin_, "-", max_bytes - used, max_bytes)));
      continue;
    }
    std::error_code ec;
    auto st = fs::status(a, ec);
    if (ec || !fs::exists(st)) return Status::Error("-f " + a + ": no such file or directory");
    if (fs::is_directory(st)) {
      std::vector<fs::path> members;
      auto collect = [&](const fs::directory_entry& e) {
        std::error_code ec2;
        if (e.is_regular_file(ec2) && IsManifest(e.path())) members.push_back(fs::relative(e.path(), a, ec2));
      };
      if (recursive) {
        for (auto it = fs::recursive_directory_iterator(a, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
          collect(*it);
      } else {
        for (auto it = fs::directory_iterator(a, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
          collect(*it);
      }
      if (ec) return Status::Error("-f " + a + ": " + ec.message());
      std::sort(members.begin(), members.end());
      if (members.empty())
        return Status::Error("-f " + a + ": no *.yaml, *.yml or *.json files" +
                             (recursive ? std::string() : std::string(" (subdirectories need -R)")));
      for (const auto& m : members) {
        std::string name = Join(a, m);
        WEFT_RETURN_IF_ERROR(add(name, Slurp(name, max_bytes - used, max_bytes)));
      }
      continue;
    }
    WEFT_RETURN_IF_ERROR(add(a, Slurp(a, max_bytes - used, max_bytes)));
  }
  return out;
}

void PrintMessage(const std::string& prefix, const std::string& msg) {
  std::fwrite(prefix.data(), 1, prefix.size(), stderr);
  std::fwrite(msg.data(), 1, msg.size(), stderr);
  if (msg.empty() || msg.back() != '\n') std::fputc('\n', stderr);
}

void PrintInputError(const Status& st) {
  PrintMessage(st.err() == EINVAL ? "" : "weftctl: ", st.message());  // EINVAL: config::CheckText's lines
}

}  // namespace weft::cli::ctl
