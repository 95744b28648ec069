// bpffs squatting (issue 9 #10), label `kernel`: an unprivileged user (runuser
// -u nobody) must not be able to prepare, hide or fill the agent's pin root.
// bpffs is world-writable and sticky (1777), so anyone can create
// /sys/fs/bpf/weft before the agent does, and rename it later so that
// `weft-agent cleanup` finds nothing while the programs stay attached. Here a
// test directory R (mode 1777, like /sys/fs/bpf) stands in for bpffs's root;
// every pin root of a case lives in it and goes with it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/datapath/loader.hpp"
#include "agent/policy/policy_datapath.hpp"
#include "tests/kernel/support/kernel_env.hpp"
#include "weft/sys.hpp"

namespace weft::ktest {
namespace {

namespace fs = std::filesystem;

// Runs argv as nobody; its exit code.
int AsNobody(const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"runuser", "-u", "nobody", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  std::string out;
  auto rc = sys::RunCommand(full, &out);
  return rc.ok() ? *rc : -1;
}

std::string ModeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "missing";
  char b[8];
  std::snprintf(b, sizeof(b), "%04o", st.st_mode & 07777);
  return b;
}

class PinRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEFT_REQUIRE_KERNEL();
    if (::access("/usr/sbin/runuser", X_OK) != 0 && ::access("/sbin/runuser", X_OK) != 0) {
      if (InCi()) FAIL() << "CI=true and runuser is missing";
      GTEST_SKIP() << "runuser missing";
    }
    auto d = PinDir::Create();
    ASSERT_TRUE(d.ok()) << d.status().message();
    dir_ = std::move(*d);
    ASSERT_EQ(::chmod(dir_->path().c_str(), 01777), 0);  // like /sys/fs/bpf
  }
  void TearDown() override {
    if (!dir_) return;
    // Whatever a case left (pins, squatted directories): removed as root.
    std::error_code ec;
    std::vector<fs::path> left;
    for (const auto& e : fs::directory_iterator(dir_->path(), ec)) left.push_back(e.path());
    for (const auto& p : left) {
      (void)policy::CleanupPolicy(p.string(), "n1");  // detaches links, if it can
      fs::remove_all(p, ec);
    }
    EXPECT_TRUE(dir_->Remove().ok());
  }
  std::string Root(const std::string& name) const { return dir_->path() + "/" + name; }

  Result<std::unique_ptr<policy::PolicyDatapath>> LoadAt(const std::string& root) {
    policy::PolicyOptions o;
    o.pin_root = root;
    o.node = "n1";
    o.capacities.ct = 1 << 10, o.capacities.identity = 1 << 10, o.capacities.policy = 1 << 10,
    o.capacities.flows = 1 << 10;
    o.lock_node = true;
    auto dp = policy::PolicyDatapath::Load(o);
    if (!dp.ok()) return dp.status();
    WEFT_RETURN_IF_ERROR((*dp)->Attach());
    return dp;
  }

  std::unique_ptr<PinDir> dir_;
};

// Who may own the pin root, and with which mode: the agent's own (created
// 0700), an older agent's (root's, 0755: narrowed), and everything else
// refused with the path, the owner and the mode, before anything is created.
TEST_F(PinRootTest, OnlyARootOwnedPrivateDirectoryIsUsed) {
  struct Case {
    const char* name;
    std::function<void(const std::string&)> setup;
    bool ok;
    std::vector<std::string> message;  // substrings of the refusal
  } cases[] = {
      {"absent: created 0700", [](const std::string&) {}, true, {}},
      {"root's with 0755 (an older agent's): narrowed to 0700",
       [](const std::string& p) { ASSERT_EQ(::mkdir(p.c_str(), 0755), 0); },
       true,
       {}},
      {"pre-created by nobody, 0777",
       [](const std::string& p) {
         ASSERT_EQ(AsNobody({"mkdir", "-m", "0777", p}), 0);
       },
       false,
       {"uid 65534 (nobody)", "mode 0777", "not by root"}},
      {"pre-created by nobody, 0700",
       [](const std::string& p) {
         ASSERT_EQ(AsNobody({"mkdir", "-m", "0700", p}), 0);
       },
       false,
       {"uid 65534 (nobody)", "mode 0700"}},
      {"root's but group-writable",
       [](const std::string& p) {
         ASSERT_EQ(::mkdir(p.c_str(), 0700), 0);
         ASSERT_EQ(::chmod(p.c_str(), 0770), 0);
       },
       false,
       {"uid 0", "0770", "writable by group or others"}},
      {"root's but world-writable and sticky",
       [](const std::string& p) {
         ASSERT_EQ(::mkdir(p.c_str(), 0700), 0);
         ASSERT_EQ(::chmod(p.c_str(), 01777), 0);
       },
       false,
       {"1777", "writable by group or others"}},
      {"a symlink to a root-owned 0700 directory",
       [this](const std::string& p) {
         const std::string target = Root("target");
         ASSERT_EQ(::mkdir(target.c_str(), 0700), 0);
         ASSERT_EQ(::symlink(target.c_str(), p.c_str()), 0);
       },
       false,
       {"not a directory (a symlink?)"}},
  };
  int i = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string root = Root("case" + std::to_string(i++));
    c.setup(root);
    if (HasFatalFailure()) return;
    auto dp = LoadAt(root);
    if (c.ok) {
      ASSERT_TRUE(dp.ok()) << dp.status().message();
      struct stat st {};
      ASSERT_EQ(::lstat(root.c_str(), &st), 0);
      EXPECT_EQ(st.st_uid, 0u);
      EXPECT_EQ(ModeOf(root), "0700");
      dp->reset();
      continue;
    }
    ASSERT_FALSE(dp.ok()) << "a pin root it does not own was used";
    const std::string msg = dp.status().message();
    EXPECT_NE(msg.find(root), std::string::npos) << msg;
    for (const auto& want : c.message) EXPECT_NE(msg.find(want), std::string::npos) << want << " in: " << msg;
    EXPECT_FALSE(fs::exists(root + "/n1")) << "something was created in a refused pin root";
    // The cleanup refuses it the same way (and touches nothing in it).
    auto cl = datapath::Cleanup(root, "n1");
    EXPECT_FALSE(cl.ok());
    auto pcl = policy::CleanupPolicy(root, "n1");
    EXPECT_FALSE(pcl.ok());
  }
}

// A pin root the agent created cannot be moved away, listed or filled by
// anyone else, so the cleanup finds the pins where the agent put them.
TEST_F(PinRootTest, NobodyCanHideOrFillTheAgentsPinRoot) {
  const std::string root = Root("weft"), moved = Root("moved");
  auto dp = LoadAt(root);
  ASSERT_TRUE(dp.ok()) << dp.status().message();
  dp->reset();
  const std::string pin = root + "/n1/maps/" WEFT_MAP_POLICY;
  ASSERT_TRUE(fs::exists(pin));

  EXPECT_NE(AsNobody({"mv", root, moved}), 0) << "nobody renamed the pin root";
  EXPECT_NE(AsNobody({"mkdir", root + "/n2"}), 0) << "nobody created an entry in the pin root";
  EXPECT_NE(AsNobody({"ls", root}), 0) << "nobody listed the pin root";
  EXPECT_FALSE(fs::exists(moved));
  EXPECT_TRUE(fs::exists(pin));

  auto pr = policy::CleanupPolicy(root, "n1");
  ASSERT_TRUE(pr.ok()) << pr.status().message();
  auto r = datapath::Cleanup(root, "n1");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->nothing_to_do());
  EXPECT_FALSE(fs::exists(root + "/n1"));
}

// Its parent must be root's and, if others can write it, sticky: otherwise
// anyone could rename even a root-owned pin root.
TEST_F(PinRootTest, AParentOthersCanRenameInIsRefused) {
  const std::string parent = Root("open");
  ASSERT_EQ(::mkdir(parent.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(parent.c_str(), 0777), 0);  // writable, not sticky
  auto dp = LoadAt(parent + "/weft");
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.status().message().find("parent " + parent), std::string::npos) << dp.status().message();
  EXPECT_NE(dp.status().message().find("0777"), std::string::npos) << dp.status().message();
  EXPECT_FALSE(fs::exists(parent + "/weft"));

  const std::string theirs = Root("theirs");
  ASSERT_EQ(AsNobody({"mkdir", "-m", "0755", theirs}), 0);
  auto dp2 = LoadAt(theirs + "/weft");
  ASSERT_FALSE(dp2.ok());
  EXPECT_NE(dp2.status().message().find("uid 65534"), std::string::npos) << dp2.status().message();
}

}  // namespace
}  // namespace weft::ktest
