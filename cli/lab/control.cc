#include "cli/lab/control.hpp"

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/ctl/admin_client.hpp"
#include "cli/ctl/format.hpp"
#include "cli/lab/probe.hpp"
#include "weft/credentials.hpp"
#include "weft/sys.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace weft::cli::lab::control {

namespace {

CallResult Unreachable(const std::string& msg) { return {2, msg, {}, {}}; }

}  // namespace

std::string AdminAddress(const LabState& st) { return "unix://" + st.controller.admin_socket; }

Status PlanController(LabState& st) {
  auto port = probe::FreeLoopbackPort();
  if (!port.ok()) return port.status().Wrap("pick a port for weft-controller");
  std::string dir = st.state_dir + "/controller";
  st.controller.listen = "127.0.0.1:" + std::to_string(*port);
  st.controller.admin_socket = dir + "/admin.sock";
  st.controller.data_dir = dir + "/data";
  st.controller.log = dir + "/controller.log";
  // The admin socket's directory and the store (the CA key): root's only.
  WEFT_RETURN_IF_ERROR(sys::MakePrivateDir(dir));
  return sys::MakePrivateDir(st.controller.data_dir);
}

std::vector<std::string> ControllerArgv(const LabState& st, bool init) {
  std::vector<std::string> argv = {st.controller_bin,     "--data-dir",     st.controller.data_dir,
                                   "--listen",            st.controller.listen, "--admin-socket",
                                   st.controller.admin_socket, "--service-cidr", kServiceCidr,
                                   "--service-cidr-v6",   kServiceCidrV6};
  if (init) argv.push_back("--init");
  return argv;
}

Status StartController(LabState& st, bool init) {
  sys::SpawnOptions o;
  o.log_path = st.controller.log;
  auto pid = sys::Spawn(ControllerArgv(st, init), o);
  if (!pid.ok()) return pid.status().Wrap("start weft-controller");
  st.controller.pid = *pid;
  return Status::Ok();
}

Status WaitControllerReady(const LabState& st, std::chrono::steady_clock::time_point deadline) {
  auto conn = ctl::ConnectAdmin(AdminAddress(st));
  if (!conn.ok()) return conn.status();
  for (;;) {
    if (!probe::Alive(st.controller.pid)) {
      waitpid(st.controller.pid, nullptr, WNOHANG);
      return Status::Error("weft-controller (pid " + std::to_string(st.controller.pid) + ") exited; " +
                           st.controller.log + " ends with:\n" + probe::LogTail(st.controller.log, 15));
    }
    auto ctx = ctl::Context(500ms);
    weft::v1::StatusRequest req;
    weft::v1::StatusResponse resp;
    grpc::Status s = conn->stub->Status(ctx.get(), req, &resp);
    if (s.ok()) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Error("weft-controller: " + ctl::DescribeRpcError(s, "Admin Status", conn->address) +
                           " (not ready in time); " + st.controller.log + " ends with:\n" +
                           probe::LogTail(st.controller.log, 15));
    std::this_thread::sleep_for(50ms);
  }
}

CallResult Apply(const LabState& st, const std::vector<NamedText>& files) {
  auto conn = ctl::ConnectAdmin(AdminAddress(st));
  if (!conn.ok()) return Unreachable(conn.status().message());
  weft::v1::ApplyRequest req;
  for (const auto& f : files) {
    auto* sf = req.add_files();
    sf->set_name(f.name);
    sf->set_content(f.content);
  }
  weft::v1::ApplyResponse resp;
  auto ctx = ctl::Context(60s);
  grpc::Status s = conn->stub->Apply(ctx.get(), req, &resp);
  CallResult r;
  if (!s.ok()) {
    r.exit_code = ctl::ExitCodeFor(s.error_code());
    r.error = ctl::DescribeRpcError(s, "apply", conn->address);
    return r;
  }
  for (const auto& c : resp.changes()) r.changes.push_back(ctl::FormatChange(c, false));
  for (const auto& w : resp.warnings()) r.warnings.push_back(ctl::FormatDiagnostic(w));
  return r;
}

CallResult DeleteWorkloads(const LabState& st, const std::vector<std::pair<std::string, std::string>>& ns_names) {
  CallResult r;
  if (ns_names.empty()) return r;
  auto conn = ctl::ConnectAdmin(AdminAddress(st));
  if (!conn.ok()) return Unreachable(conn.status().message());
  // One call per entry: an entry deleted by hand (NOT_FOUND) must not block the others.
  for (const auto& [ns, name] : ns_names) {
    weft::v1::DeleteRequest req;
    auto* ref = req.add_refs();
    ref->set_kind("WorkloadEntry");
    ref->set_namespace_(ns);
    ref->set_name(name);
    weft::v1::DeleteResponse resp;
    auto ctx = ctl::Context(30s);
    grpc::Status s = conn->stub->Delete(ctx.get(), req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) continue;
    if (!s.ok()) {
      r.exit_code = ctl::ExitCodeFor(s.error_code());
      r.error = ctl::DescribeRpcError(s, "delete WorkloadEntry " + ns + "/" + name, conn->address);
      return r;
    }
    for (const auto& c : resp.changes()) r.changes.push_back(ctl::FormatChange(c, false));
  }
  return r;
}

Result<std::vector<ServiceVips>> ReadVips(const LabState& st) {
  auto conn = ctl::ConnectAdmin(AdminAddress(st));
  if (!conn.ok()) return conn.status();
  weft::v1::GetRequest req;
  req.set_kind("Service");
  weft::v1::GetResponse resp;
  auto ctx = ctl::Context(30s);
  grpc::Status s = conn->stub->Get(ctx.get(), req, &resp);
  if (!s.ok()) return Status::Error(ctl::DescribeRpcError(s, "get services", conn->address));
  std::vector<ServiceVips> out;
  for (const auto& r : resp.resources()) {
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(r.json());
    } catch (const std::exception& e) {
      return Status::Error("Service " + r.namespace_() + "/" + r.name() + " from the controller: bad JSON: " + e.what());
    }
    out.push_back(VipsOfService(r.name(), r.namespace_(), obj));
  }
  return out;
}

Result<weft::v1::StatusResponse> SyncStatus(const LabState& st) {
  auto conn = ctl::ConnectAdmin(AdminAddress(st));
  if (!conn.ok()) return conn.status();
  weft::v1::StatusRequest req;
  weft::v1::StatusResponse resp;
  auto ctx = ctl::Context(5s);
  grpc::Status s = conn->stub->Status(ctx.get(), req, &resp);
  if (!s.ok()) return Status::Error(ctl::DescribeRpcError(s, "status", conn->address));
  return resp;
}

Result<std::string> CreateJoinToken(const LabState& st, const std::string& node) {
  auto conn = ctl::ConnectAdmin(AdminAddress(st));
  if (!conn.ok()) return conn.status();
  weft::v1::JoinTokenRequest req;
  req.set_node(node);
  weft::v1::JoinTokenResponse resp;
  auto ctx = ctl::Context(10s);
  grpc::Status s = conn->stub->CreateJoinToken(ctx.get(), req, &resp);
  if (!s.ok()) return Status::Error(ctl::DescribeRpcError(s, "join token for " + node, conn->address));
  return resp.token();
}

}  // namespace weft::cli::lab::control
