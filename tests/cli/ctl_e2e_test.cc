// weftctl against a real weft-controller on a unix socket in a temp dir (no
// privileges, no kernel, no agents): the exit-code table and the output
// formats. The controller is started per test suite and stopped by pid.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "weft/sanitizers.hpp"
#include <thread>

#include "weft/sys.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kSamples = WEFT_SHARED_DIR "/istio-samples/bookinfo";
const std::string kBookinfo = kSamples + "/platform/bookinfo.yaml";
const std::string kDr = kSamples + "/networking/destination-rule-all.yaml";
const std::string kVsV1 = kSamples + "/networking/virtual-service-all-v1.yaml";
const std::string kVs8020 = kSamples + "/networking/virtual-service-reviews-80-20.yaml";
// 671 bytes that expand to 387 million nodes (tests/testdata/resources/invalid).
const std::string kAliasBomb = WEFT_TESTDATA_DIR "/resources/invalid/deployment-alias-bomb.yaml";

struct Out {
  int rc = -1;
  std::string out;
};

Out RunCmd(std::vector<std::string> argv) {
  Out r;
  // Keep stdout and stderr apart: stderr to a file.
  std::string err = "/tmp/weft-ctle2e-" + std::to_string(getpid()) + ".err";
  std::string cmd;
  for (auto& a : argv) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += q + "' ";
  }
  cmd += "2>" + err;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(err);
  std::string e((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(err.c_str());
  r.out += "\n[stderr]\n" + e;
  return r;
}

std::string Stdout(const Out& o) { return o.out.substr(0, o.out.find("\n[stderr]\n")); }
std::string Stderr(const Out& o) { return o.out.substr(o.out.find("\n[stderr]\n") + 10); }

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class CtlE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/weft-ctle2e-XXXXXX";
    dir_ = mkdtemp(tmpl);
    sock_ = dir_ + "/admin.sock";
    weft::sys::SpawnOptions o;
    o.log_path = dir_ + "/controller.log";
    auto pid = weft::sys::Spawn({WEFT_CONTROLLER_BIN, "--data-dir", dir_ + "/data", "--init", "--listen",
                                 "127.0.0.1:" + std::to_string(FreePort()), "--admin-socket", sock_},
                                o);
    ASSERT_TRUE(pid.ok()) << pid.status().message();
    pid_ = *pid;
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
      if (Ctl({"status"}).rc == 0) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "weft-controller did not answer; log:\n" << Slurp(dir_ + "/controller.log");
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 100 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i) std::this_thread::sleep_for(20ms);
      if (waitpid(pid_, nullptr, WNOHANG) == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    fs::remove_all(dir_);
  }
  static std::string Slurp(const std::string& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  Out Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), WEFT_WEFTCTL);
    args.insert(args.end(), {"--controller", "unix://" + sock_});
    return RunCmd(args);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string dir_, sock_;
  pid_t pid_ = 0;
};


TEST_F(CtlE2E, ApplyGetDiffDeleteStatus) {
  auto a = Ctl({"apply", "-f", kBookinfo});
  ASSERT_EQ(a.rc, 0) << a.out;
  EXPECT_NE(Stdout(a).find("service/reviews created\n"), std::string::npos) << a.out;
  EXPECT_NE(Stdout(a).find("deployment.apps/reviews-v1 created\n"), std::string::npos) << a.out;
  auto again = Ctl({"apply", "-f", kBookinfo});
  EXPECT_NE(Stdout(again).find("service/reviews unchanged\n"), std::string::npos) << again.out;

  auto r = Ctl({"apply", "-f", kDr, "-f", kVsV1});
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(Stdout(r).find("virtualservice.networking.istio.io/reviews created\n"), std::string::npos) << r.out;

  auto svc = Ctl({"get", "svc"});
  ASSERT_EQ(svc.rc, 0) << svc.out;
  EXPECT_EQ(Stdout(svc).rfind("NAME", 0), 0u) << svc.out;
  EXPECT_NE(Stdout(svc).find("CLUSTER-IP(S)"), std::string::npos) << svc.out;
  EXPECT_NE(Stdout(svc).find("9080/TCP"), std::string::npos) << svc.out;
  EXPECT_NE(Stdout(svc).find("10.96."), std::string::npos) << svc.out;  // VIPs allocated by the controller
  auto all = Ctl({"get", "vs", "-A"});
  EXPECT_NE(Stdout(all).find("NAMESPACE"), std::string::npos) << all.out;
  EXPECT_NE(Stdout(all).find("HOSTS"), std::string::npos) << all.out;
  auto dr = Ctl({"get", "destinationrules", "reviews", "-o", "json"});
  ASSERT_EQ(dr.rc, 0) << dr.out;
  EXPECT_EQ(nlohmann::json::parse(Stdout(dr))["spec"]["host"], "reviews");
  auto y = Ctl({"get", "vs", "reviews", "-o", "yaml"});
  EXPECT_NE(Stdout(y).find("kind: VirtualService"), std::string::npos) << y.out;

  // diff: 0 no change, 1 changes (kubectl diff), nothing stored.
  EXPECT_EQ(Ctl({"diff", "-f", kVsV1}).rc, 0);
  auto d = Ctl({"diff", "-f", kVs8020});
  EXPECT_EQ(d.rc, 1) << d.out;
  EXPECT_NE(Stdout(d).find("+          weight: 80"), std::string::npos) << d.out;
  EXPECT_EQ(Ctl({"diff", "-f", kVs8020}).rc, 1);  // still different: diff changed nothing

  // dry run changes nothing either.
  auto dry = Ctl({"apply", "--dry-run", "-f", kVs8020});
  EXPECT_NE(Stdout(dry).find("virtualservice.networking.istio.io/reviews configured (dry run)"), std::string::npos)
      << dry.out;
  EXPECT_EQ(Ctl({"diff", "-f", kVs8020}).rc, 1);

  auto del = Ctl({"delete", "vs", "reviews"});
  EXPECT_EQ(del.rc, 0) << del.out;
  EXPECT_NE(Stdout(del).find("virtualservice.networking.istio.io/reviews deleted"), std::string::npos) << del.out;
  EXPECT_EQ(Ctl({"get", "vs", "reviews"}).rc, 1);
  EXPECT_EQ(Ctl({"delete", "vs", "reviews"}).rc, 1);
  EXPECT_EQ(Ctl({"delete", "vs", "reviews", "--ignore-not-found"}).rc, 0);
  auto delf = Ctl({"delete", "-f", kDr});
  EXPECT_EQ(delf.rc, 0) << delf.out;
  EXPECT_NE(Stdout(delf).find("destinationrule.networking.istio.io/reviews deleted"), std::string::npos) << delf.out;

  auto st = Ctl({"status"});
  EXPECT_EQ(st.rc, 0) << st.out;
  auto sj = Ctl({"status", "-o", "json"});
  ASSERT_EQ(sj.rc, 0) << sj.out;
  EXPECT_TRUE(nlohmann::json::parse(Stdout(sj)).contains("nodes"));
}

TEST_F(CtlE2E, ExitCodeTable) {
  ASSERT_EQ(Ctl({"apply", "-f", kBookinfo}).rc, 0);
  auto before = Ctl({"get", "svc", "-A", "-o", "json"});
  ASSERT_EQ(before.rc, 0);

  // Rejected input: 1, every problem as file:line:col on stderr, nothing stored.
  std::string bad = Write("bad.yaml",
                          "apiVersion: v1\nkind: Service\nmetadata: {name: fine}\nspec:\n  ports:\n  - port: 80\n"
                          "---\napiVersion: v1\nkind: Service\nmetadata: {name: broken}\nspec:\n  ports:\n"
                          "  - port: 99999\n");
  auto r = Ctl({"apply", "-f", bad});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(Stderr(r).find(bad + ":13:"), std::string::npos) << r.out;
  EXPECT_NE(Stderr(r).find("Service default/broken"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"get", "svc", "-A", "-o", "json"}).out, before.out);
  EXPECT_EQ(Ctl({"get", "svc", "fine"}).rc, 1);
  EXPECT_EQ(Ctl({"diff", "-f", bad}).rc, 3);  // diff: >1 is an error

  // Unreadable file, bad flag, bad -o: 1.
  EXPECT_EQ(Ctl({"apply", "-f", dir_ + "/missing.yaml"}).rc, 1);
  EXPECT_EQ(Ctl({"get", "svc", "--bogus"}).rc, 1);
  EXPECT_EQ(Ctl({"get", "svc", "-o", "xml"}).rc, 1);

  // No controller there: 2 (apply, get, status, delete), diff 2 as well.
  std::string none = "unix://" + dir_ + "/nobody.sock";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"apply", "-f", kVsV1}, {"get", "svc"}, {"status"}, {"delete", "svc", "x"}, {"diff", "-f", kVsV1}}) {
    std::vector<std::string> argv = {WEFT_WEFTCTL};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--controller", none});
    auto o = RunCmd(argv);
    EXPECT_EQ(o.rc, 2) << args[0] << ": " << o.out;
    EXPECT_NE(Stderr(o).find("UNAVAILABLE"), std::string::npos) << o.out;
  }
  auto refused = RunCmd({WEFT_WEFTCTL, "get", "svc", "--controller", "127.0.0.1:" + std::to_string(FreePort())});
  EXPECT_EQ(refused.rc, 2) << refused.out;
  // WEFT_CONTROLLER is the default when --controller is absent.
  auto env = RunCmd({"env", "WEFT_CONTROLLER=unix://" + sock_, WEFT_WEFTCTL, "get", "svc"});
  EXPECT_EQ(env.rc, 0) << env.out;
}

// Issue 9 items 4 and 11 through weftctl: every refusal exits 1 with
// file:line:col (or the file and the limit), and nothing is stored. Before:
// `validate -f /dev/zero` read until it aborted; text that is not UTF-8 made
// `apply` exit 2 ("UNIMPLEMENTED"); a NUL cut the message after `"cart` and
// dropped the lines after it.
TEST_F(CtlE2E, RefusedInputExitsOneWithItsPlace) {
  ASSERT_EQ(Ctl({"apply", "-f", kBookinfo}).rc, 0);
  auto before = Ctl({"get", "svc", "-A", "-o", "json"});
  const std::string latin1 = Write("latin1.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n");
  const std::string nul = Write("nul.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: \"cart\\0admin\"}\n"
                                            "spec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\n"
                                            "metadata: {name: other}\nspec: {ports: [{port: 99999}]}\n");
  struct Row {
    std::vector<std::string> args;
    std::vector<std::string> want;  // each on stderr
  };
  const std::vector<Row> rows = {
      {{"validate", "-f", "/dev/zero"}, {"weftctl: -f /dev/zero: more than 32 MiB of input (the limit per request"}},
      {{"apply", "-f", "/dev/zero"}, {"-f /dev/zero: more than 32 MiB"}},
      {{"apply", "-f", latin1}, {latin1 + ":3:21: input: invalid UTF-8 (byte 0xe9): YAML text must be UTF-8\n"}},
      {{"diff", "-f", latin1}, {latin1 + ":3:21: input: invalid UTF-8"}},
      {{"validate", "-f", latin1}, {latin1 + ":3:21: input: invalid UTF-8"}},
      {{"apply", "-f", nul},
       {nul + ":3:18: Service (document 1): metadata.name: \"cart\\x00admin\" must be a DNS-1123 label",
        nul + ":9:23: Service default/other: spec.ports[0].port: 99999 is out of range (1-65535)\n"}},
      {{"validate", "-f", nul}, {"\"cart\\x00admin\" must be", ":9:23: Service default/other"}},
  };
  for (const auto& row : rows) {
    std::vector<std::string> argv = {WEFT_WEFTCTL};
    argv.insert(argv.end(), row.args.begin(), row.args.end());
    auto r = row.args[0] == "validate" ? RunCmd(argv) : Ctl(row.args);  // validate needs no controller
    int want_rc = row.args[0] == "diff" ? 3 : 1;  // diff: kubectl's >1 for an error
    EXPECT_EQ(r.rc, want_rc) << row.args[0] << " " << row.args[2] << ": " << r.out;
    for (const auto& w : row.want) EXPECT_NE(Stderr(r).find(w), std::string::npos) << w << "\n" << r.out;
    EXPECT_EQ(Stderr(r).find('\0'), std::string::npos) << r.out;
  }
  EXPECT_EQ(Ctl({"get", "svc", "-A", "-o", "json"}).out, before.out);
}

long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Issue 9 item 4: the controller's memory comes back after refused input and
// after dry runs. Figures (RSS): bookinfo stored ~20 MB; before, a 563-byte
// alias bomb left it at 1.2 GB (this one, 671 bytes, aborts it with
// bad_alloc) and five dry runs of 900 KB at 151 MB; now ~21 MB after both
// (the bomb is refused after counting, the heap is trimmed once the
// responses are sent: controller/memory_trim.hpp).
TEST_F(CtlE2E, MemoryComesBackAfterRefusedInputAndDryRuns) {
  ASSERT_EQ(Ctl({"apply", "-f", kBookinfo}).rc, 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Ctl({"apply", "--dry-run", "-f", kBookinfo}).rc, 0);
  // The controller's live heap (weftctl status -o json): the same measure with
  // glibc's allocator and with ASan's.
  auto heap = [&]() -> long long {
    auto r = Ctl({"status", "-o", "json"});
    EXPECT_EQ(r.rc, 0) << r.out;
    auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')), nullptr, false);
    return j.is_object() ? j.value("controller_heap_bytes", -1LL) : -1LL;
  };
  std::this_thread::sleep_for(500ms);  // let the first trims happen: the baseline is the trimmed heap
  const long baseline = RssKb(pid_);
  const long long heap_before = heap();
  ASSERT_GT(baseline, 0);
  ASSERT_GT(heap_before, 0);

  std::string entries;
  for (int i = 0; entries.size() < 900 * 1024; ++i) {
    entries += "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w" + std::to_string(i) +
               "}\nspec: {address: 10.7." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
               ", labels: {app: a" + std::to_string(i % 50) + "}, serviceAccount: sa" + std::to_string(i % 20) + "}\n";
  }
  const std::string bomb_file = kAliasBomb, entries_file = Write("entries.yaml", entries);
  auto refused = Ctl({"apply", "-f", bomb_file});
  EXPECT_EQ(refused.rc, 1) << refused.out;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Ctl({"apply", "--dry-run", "-f", entries_file}).rc, 0);
  EXPECT_EQ(Ctl({"get", "deployment", "bomb"}).rc, 1);

  // Nothing of the refused input or the dry runs stays allocated.
  const long long heap_after = heap();
  EXPECT_LE(heap_after, heap_before + (2LL << 20)) << "heap " << heap_before << " bytes before, " << heap_after;
#ifndef WEFT_ASAN
  // And the pages come back to the system (glibc: the trimmer). Under ASan the
  // heap is its allocator's, whose shadow and size classes keep what was
  // touched: RSS says nothing about Weft there.
  // The trim follows the last request by ~200 ms: poll, do not time.
  const long allowed = baseline + 16 * 1024;
  long rss = RssKb(pid_);
  for (auto until = std::chrono::steady_clock::now() + 20s; rss > allowed && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(100ms);
    rss = RssKb(pid_);
  }
  EXPECT_LE(rss, allowed) << "RSS " << baseline << " KB before, " << rss << " KB after";
  std::printf("controller RSS: %ld KB with bookinfo stored, %ld KB after a refused alias bomb and 5 dry runs of %zu KB\n",
              baseline, rss, entries.size() / 1024);
#endif
  std::printf("controller heap: %lld bytes before, %lld after\n", heap_before, heap_after);
}

TEST(CtlValidate, OfflineNoController) {
  // No controller anywhere: validate needs none.
  auto good = RunCmd({"env", "WEFT_CONTROLLER=unix:///nonexistent.sock", WEFT_WEFTCTL, "validate", "-f", kBookinfo, "-f",
                   kDr, "-f", kVsV1});
  EXPECT_EQ(good.rc, 0) << good.out;
  std::string bad = "/tmp/weft-ctle2e-validate-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(bad) << "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
                        "spec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      weight: lots\n";
  auto b = RunCmd({WEFT_WEFTCTL, "validate", "-f", bad});
  std::remove(bad.c_str());
  EXPECT_EQ(b.rc, 1) << b.out;
  EXPECT_NE(Stderr(b).find(bad + ":9:"), std::string::npos) << b.out;
  // A warning (subset no DestinationRule defines) is not an error.
  auto w = RunCmd({WEFT_WEFTCTL, "validate", "-f", kVsV1});
  EXPECT_EQ(w.rc, 0) << w.out;
  EXPECT_NE(Stderr(w).find("Warning: "), std::string::npos) << w.out;
  EXPECT_EQ(RunCmd({WEFT_WEFTCTL, "validate", "-f", "/nonexistent.yaml"}).rc, 1);
}

}  // namespace
