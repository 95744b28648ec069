// sys::ScopedNetns: the calling thread enters a namespace and comes back;
// other threads never move; sockets opened inside stay inside.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "tests/support/test_util.hpp"
#include "weft/sys.hpp"

namespace {

ino_t NetnsInode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

ino_t ThreadNetns() { return NetnsInode("/proc/thread-self/ns/net"); }

class ScopedNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      if (weft::testing::InCi()) FAIL() << "needs root (CI=true)";
      GTEST_SKIP() << "needs root";
    }
    name_ = "weftt-ns-" + weft::testing::RandomHex();
    ASSERT_TRUE(weft::sys::Run({"ip", "netns", "add", name_}).ok());
    created_ = true;
    path_ = "/run/netns/" + name_;
  }
  void TearDown() override {
    if (created_) EXPECT_TRUE(weft::sys::Run({"ip", "netns", "del", name_}).ok());
  }
  std::string name_, path_;
  bool created_ = false;
};

TEST_F(ScopedNetnsTest, EntersOnlyThisThreadAndReturns) {
  const ino_t home = ThreadNetns(), target = NetnsInode(path_);
  ASSERT_NE(home, 0u);
  ASSERT_NE(home, target);
  int fd = -1;
  {
    auto g = weft::sys::ScopedNetns::Enter(path_);
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(ThreadNetns(), target);
    ino_t other = 0;
    std::thread([&] { other = ThreadNetns(); }).join();
    // A thread created inside inherits the namespace of its creator...
    EXPECT_EQ(other, target);
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
  }
  EXPECT_EQ(ThreadNetns(), home);
  // ...and a socket opened inside stays there (told apart by the netns cookie).
  uint64_t in_cookie = 0, out_cookie = 0;
  socklen_t len = sizeof(in_cookie);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &in_cookie, &len), 0);
  int fd2 = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::getsockopt(fd2, SOL_SOCKET, SO_NETNS_COOKIE, &out_cookie, &len), 0);
  EXPECT_NE(in_cookie, out_cookie);
  ::close(fd);
  ::close(fd2);
}

TEST_F(ScopedNetnsTest, EmptyPathStaysAndBadPathNamesIt) {
  const ino_t home = ThreadNetns();
  {
    auto g = weft::sys::ScopedNetns::Enter("");
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(ThreadNetns(), home);
  }
  auto bad = weft::sys::ScopedNetns::Enter("/run/netns/weftt-does-not-exist");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/run/netns/weftt-does-not-exist"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(ThreadNetns(), home);
  auto not_ns = weft::sys::ScopedNetns::Enter("/proc/self/status");  // a file, not a namespace
  ASSERT_FALSE(not_ns.ok());
  EXPECT_EQ(ThreadNetns(), home);
}

}  // namespace
