#include "cli/ctl/inputs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace weft::cli::ctl {

namespace {

bool IsManifest(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

Result<std::string> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno("read " + path, errno ? errno : ENOENT);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::Errno("read " + path, errno ? errno : EIO);
  return ss.str();
}

// "dir" + "x.yaml" keeping the user's spelling of dir ("conf/" stays "conf/x.yaml").
std::string Join(const std::string& dir, const fs::path& rel) {
  if (!dir.empty() && dir.back() == '/') return dir + rel.string();
  return dir + "/" + rel.string();
}

}  // namespace

Result<std::vector<InputFile>> ReadInputs(const std::vector<std::string>& args, bool recursive, std::istream& stdin_) {
  std::vector<InputFile> out;
  bool used_stdin = false;
  if (args.empty()) return Status::Error("no input: pass -f FILE, -f DIR or -f -");
  for (const auto& a : args) {
    if (a.empty()) return Status::Error("-f: empty file name");
    if (a == "-") {
      if (used_stdin) return Status::Error("-f -: standard input given twice");
      used_stdin = true;
      std::stringstream ss;
      ss << stdin_.rdbuf();
      out.push_back({"-", ss.str()});
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
        auto c = Slurp(name);
        if (!c.ok()) return c.status();
        out.push_back({name, std::move(*c)});
      }
      continue;
    }
    auto c = Slurp(a);
    if (!c.ok()) return c.status();
    out.push_back({a, std::move(*c)});
  }
  return out;
}

}  // namespace weft::cli::ctl
