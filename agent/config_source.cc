// FileSource: the --config FILE mode (behaviour unchanged from the agent's
// first version: watch, coalesce, reload, keep the last good state).
#include "agent/config_source.hpp"

#include <spdlog/spdlog.h>

#include <sstream>

#include "agent/file_watch.hpp"
#include "agent/file_config.hpp"
#include "agent/metrics.hpp"
#include "config/loader.hpp"

namespace weft::agent {
namespace {

class FileSource : public ConfigSource {
 public:
  FileSource(std::string path, AgentMetrics& metrics) : path_(std::move(path)), metrics_(metrics) {}

  std::string Describe() const override { return "config " + path_; }

  Status Open() override {
    // Watch before the first load: a change written between the load and the
    // watch would otherwise be missed.
    auto watch = FileWatch::Create(path_);
    if (!watch.ok()) return watch.status();
    watch_.emplace(std::move(*watch));
    pending_ = Load("start");
    return Status::Ok();
  }

  int fd() const override { return watch_->fd(); }
  int TimeoutMs(Clock::time_point now) const override { return debounce_.TimeoutMs(now); }

  Result<std::optional<ConfigUpdate>> Next(Clock::time_point now) override {
    if (pending_) {
      std::optional<ConfigUpdate> u = std::move(pending_);
      pending_.reset();
      return u;
    }
    auto changed = watch_->Drain();
    if (!changed.ok()) return changed.status();
    if (*changed) debounce_.Event(now);
    if (!debounce_.Due(now)) return std::optional<ConfigUpdate>();
    spdlog::info("config {} changed: reloading", path_);
    return Load("config change");
  }

  void Applied(const ConfigUpdate&, const Status&) override {}

  void Reload() override {
    spdlog::info("SIGHUP: reloading {}", path_);
    debounce_.Event(Clock::now() - std::chrono::hours(1));  // due at once
  }

 private:
  // Loads, validates and compiles the file (file_config.hpp); on error logs
  // every line, counts it and returns nullopt (the last good state stays in
  // the maps).
  std::optional<ConfigUpdate> Load(const char* why) {
    auto resources = config::LoadConfigFile(path_);
    Result<lb::DesiredState> desired =
        resources.ok() ? CompileFileConfig(*resources) : Result<lb::DesiredState>(resources.status());
    if (!desired.ok()) {
      metrics_.ConfigError();
      spdlog::error("config {} rejected, keeping the last good state{}:", path_,
                    loaded_once_ ? "" : " (none yet: the maps keep what they hold)");
      std::istringstream in(desired.status().message());
      std::string line;
      while (std::getline(in, line))
        if (!line.empty()) spdlog::error("  {}", line);
      return std::nullopt;
    }
    loaded_once_ = true;
    ConfigUpdate u;
    u.desired = std::move(*desired);
    u.why = why;
    u.retry_on_failure = true;
    return u;
  }

  std::string path_;
  AgentMetrics& metrics_;
  std::optional<FileWatch> watch_;
  Debouncer debounce_;
  std::optional<ConfigUpdate> pending_;
  bool loaded_once_ = false;
};

}  // namespace

std::unique_ptr<ConfigSource> MakeFileSource(std::string path, AgentMetrics& metrics) {
  return std::make_unique<FileSource>(std::move(path), metrics);
}

}  // namespace weft::agent
