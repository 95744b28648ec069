// Helpers shared by the controller tests: a temporary data dir and
// hand-built resources (no parser needed).
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "config/resource.hpp"

namespace weft::controller::testing {

// Polls `pred` every 5 ms until true or `limit` (no timed assertion: a bound).
inline bool Eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "weft-ctl-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline config::Resource MakeService(const std::string& ns, const std::string& name, nlohmann::json spec = {}) {
  config::Resource r;
  r.api_version = "v1";
  r.key = {"Service", ns, name};
  if (spec.is_null()) spec = nlohmann::json::object();
  if (!spec.contains("ports")) spec["ports"] = {{{"name", "http"}, {"port", 80}}};
  r.object = {{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"spec", spec}};
  return r;
}

inline config::Resource MakeVirtualService(const std::string& ns, const std::string& name, const std::string& host) {
  config::Resource r;
  r.api_version = "networking.istio.io/v1beta1";
  r.key = {"VirtualService", ns, name};
  r.object = {{"apiVersion", r.api_version},
              {"kind", "VirtualService"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"spec", {{"hosts", {host}}, {"http", {{{"route", {{{"destination", {{"host", host}}}}}}}}}}}};
  return r;
}

}  // namespace weft::controller::testing
