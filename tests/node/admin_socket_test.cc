// The agent's admin endpoint is root's (weft/node/admin.hpp): weftctl as root
// reads it; `runuser -u nobody -- weftctl` is refused, by the socket's
// directory (0700) and, were its modes loosened, by the endpoint itself
// (SO_PEERCRED). The endpoint runs in process; weftctl is the real binary,
// pointed at a pin root of plain directories (no BPF needed). Needs root (to
// run commands as nobody): skips without it, fails under CI=true.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/test_util.hpp"
#include "weft/bpf_abi.h"
#include "weft/node/admin.hpp"
#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"
#include "weft/sys.hpp"

namespace weft::node {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::InCi;

struct Out {
  int rc = -1;
  std::string text;  // stdout + stderr
};

Out RunCmd(std::vector<std::string> argv, bool as_nobody) {
  if (as_nobody) argv.insert(argv.begin(), {"runuser", "-u", "nobody", "--"});
  Out o;
  auto rc = sys::RunCommand(argv, &o.text);
  o.rc = rc.ok() ? *rc : -1;
  return o;
}

// The JSON array that `weftctl bpf maps -o json` prints (after any warnings
// on stderr, which RunCommand interleaves: the array starts at "[\n").
Json MapsJson(const std::string& text) {
  auto at = text.find("[\n");
  return at == std::string::npos ? Json() : Json::parse(text.substr(at), nullptr, false);
}

class AdminSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (geteuid() != 0) why = "not root";
    else if (::access("/usr/sbin/runuser", X_OK) != 0 && ::access("/sbin/runuser", X_OK) != 0) why = "no runuser";
    else if (!fs::exists(WEFT_WEFTCTL)) why = std::string("no weftctl at ") + WEFT_WEFTCTL;
    if (!why.empty()) {
      if (InCi()) FAIL() << "CI=true and the admin socket test cannot run: " << why;
      GTEST_SKIP() << why;
    }
    char tmpl[] = "/tmp/weft-adminsock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);  // nobody may look in: only the state dir is private
    pin_root_ = root_ + "/pins";
    state_dir_ = root_ + "/state";
    fs::create_directories(PinPaths(pin_root_, "node1").maps_dir);
    fs::permissions(pin_root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
    AgentInfo info;
    info.node = "node1";
    info.pin_root = pin_root_;
    info.state_dir = state_dir_;
    info.pid = static_cast<uint64_t>(getpid());
    info.agent_version = "test";
    info.abi_version = WEFT_ABI_VERSION;
    info.names_schema = kNamesSchema;
    info.mode = "file";
    info.source = "/etc/weft/agent.yaml";
    auto s = AdminServer::Start(StatePaths(state_dir_, "node1").admin_socket, [info] { return info; });
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  Out Maps(bool as_nobody) {
    return RunCmd({WEFT_WEFTCTL, "bpf", "maps", "--pin-root", pin_root_, "--state-dir", state_dir_, "-o", "json"},
               as_nobody);
  }

  std::string root_, pin_root_, state_dir_;
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminSocketTest, RootReadsItNobodyIsRefused) {
  const StatePaths sp(state_dir_, "node1");
  struct stat st {};
  ASSERT_EQ(::lstat(sp.admin_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(::lstat(sp.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // Root: weftctl has the agent's answer.
  Out root = Maps(false);
  ASSERT_EQ(root.rc, 0) << root.text;
  Json j = MapsJson(root.text);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << root.text;
  EXPECT_EQ(j[0]["agent"]["node"], "node1") << root.text;
  EXPECT_EQ(j[0]["agent"]["pid"], getpid());

  // nobody: the directory stops it before the socket.
  Out nobody = Maps(true);
  EXPECT_EQ(nobody.rc, 0) << "the maps are still listed: " << nobody.text;
  EXPECT_NE(nobody.text.find("Permission denied"), std::string::npos) << nobody.text;
  j = MapsJson(nobody.text);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << nobody.text;
  EXPECT_TRUE(j[0]["agent"].is_null()) << nobody.text;

  // Modes loosened (by mistake, or on purpose): the endpoint refuses by uid.
  ASSERT_EQ(::chmod(state_dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sp.dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sp.admin_socket.c_str(), 0666), 0);
  nobody = Maps(true);
  EXPECT_NE(nobody.text.find("refused: permission denied: uid 65534"), std::string::npos) << nobody.text;
  j = MapsJson(nobody.text);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << nobody.text;
  EXPECT_TRUE(j[0]["agent"].is_null()) << "nothing of the agent's answer: " << nobody.text;
  // Root still is answered.
  root = Maps(false);
  EXPECT_EQ(MapsJson(root.text)[0]["agent"]["node"], "node1") << root.text;
}

}  // namespace
}  // namespace weft::node
