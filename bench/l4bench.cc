// weft-l4bench: the L4 benchmark's load generator, server, input generators
// and report, in one binary so the driver (bench/run_l4.sh) needs nothing else.
//
//   weft-l4bench serve  --port 8080 --cpu 1 --netns NS       request/response server
//   weft-l4bench load   --mode crr|rr --dst IP:PORT ...      one measured cell, one JSON line
//   weft-l4bench gen-iptables --services N ...               kube-proxy style iptables-restore input
//   weft-l4bench gen-config   --services N ...               weft-agent YAML (Services + WorkloadEntries)
//   weft-l4bench report --in cells.jsonl --json out.json     medians, ratios, table
//
// Protocol: the client sends `req` bytes, the server answers every complete
// `req` bytes with `resp` bytes. crr = connect, one request/response, close
// (the client closes first); rr = request/response on established connections.
//
// Every loop is bounded in time: `load` by --warmup + --seconds, `serve` by
// --max-seconds. Machine CPU comes from /proc/stat over the measured window
// only (all CPUs, softirq included), because the kernel charges network and
// BPF work to whatever runs at the time, not to the process that caused it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "weft-l4bench: %s\n", msg.c_str());
  std::exit(1);
}
std::string Err(const std::string& step) { return step + ": " + std::strerror(errno); }

// ---- process placement -------------------------------------------------------

// Joins a cgroup (our own pid, before any work) and a network namespace. The
// process was started for the benchmark, so moving itself is allowed; it never
// moves anything else.
void Place(const std::string& cgroup, const std::string& netns, int cpu, int nice) {
  if (!cgroup.empty()) {
    std::ofstream procs(cgroup + "/cgroup.procs");
    procs << getpid() << std::flush;
    if (!procs) Die("join cgroup " + cgroup + ": write cgroup.procs failed");
  }
  if (!netns.empty()) {
    std::string p = "/run/netns/" + netns;
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die(Err("open netns " + p));
    if (setns(fd, CLONE_NEWNET) != 0) Die(Err("enter netns " + p));
    close(fd);
  }
  // On a shared machine, a higher priority keeps other users' work from
  // setting our rate (machine CPU still counts their work: see background_busy).
  if (nice != 0 && setpriority(PRIO_PROCESS, 0, nice) != 0) Die(Err("setpriority " + std::to_string(nice)));
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) Die(Err("pin to cpu " + std::to_string(cpu)));
  }
}

// ---- /proc/stat ----------------------------------------------------------------

struct CpuTimes {
  // jiffies (USER_HZ), summed over all CPUs
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  uint64_t busy() const { return user + nice + system + irq + softirq + steal; }
  uint64_t total() const { return busy() + idle + iowait; }
};

CpuTimes ReadProcStat() {
  std::ifstream in("/proc/stat");
  std::string tag;
  CpuTimes t;
  in >> tag >> t.user >> t.nice >> t.system >> t.idle >> t.iowait >> t.irq >> t.softirq >> t.steal;
  if (tag != "cpu") Die("read /proc/stat: unexpected first line");
  return t;
}

CpuTimes Delta(const CpuTimes& a, const CpuTimes& b) {
  CpuTimes d;
  d.user = b.user - a.user;
  d.nice = b.nice - a.nice;
  d.system = b.system - a.system;
  d.idle = b.idle - a.idle;
  d.iowait = b.iowait - a.iowait;
  d.irq = b.irq - a.irq;
  d.softirq = b.softirq - a.softirq;
  d.steal = b.steal - a.steal;
  return d;
}

// CPU attributable to the benchmark, for a machine shared with other work:
// usage of the benchmark's cgroup subtree (client, server, agent; without
// CONFIG_IRQ_TIME_ACCOUNTING the softirq work that runs in their context is
// charged to them) plus every kernel thread (ksoftirqd, RCU, kworkers: work
// deferred out of our context, e.g. freeing socket storage after a close).
// The metric stays the machine-wide one; this one is the cross-check
// that other users' processes cannot inflate.
struct Attributable {
  std::string cgroup;
  std::vector<std::string> kthread_stat;  // /proc/PID/stat of kernel threads (children of kthreadd)

  static bool StatTimes(const std::string& path, int* ppid, double* cpu_s) {
    std::ifstream st(path);
    std::string line;
    if (!std::getline(st, line)) return false;
    auto rp = line.rfind(')');
    if (rp == std::string::npos || rp + 2 > line.size()) return false;
    std::stringstream ss(line.substr(rp + 2));
    std::string f;
    static const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    *cpu_s = 0;
    // fields after comm: state(3) ppid(4) ... utime(14) stime(15)
    for (int i = 3; i <= 15 && ss >> f; i++) {
      if (i == 4) *ppid = std::stoi(f);
      if (i == 14 || i == 15) *cpu_s += std::stoull(f) / hz;
    }
    return true;
  }
  void Init(const std::string& cg) {
    cgroup = cg;
    if (cg.empty()) return;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      int ppid = -1;
      double cpu = 0;
      std::string path = e.path().string() + "/stat";
      if (StatTimes(path, &ppid, &cpu) && (ppid == 2 || name == "2")) kthread_stat.push_back(path);
    }
  }
  // {cgroup seconds, kernel thread seconds}
  std::pair<double, double> Seconds() const {
    double cg = 0, kt = 0;
    if (cgroup.empty()) return {0, 0};
    std::ifstream st(cgroup + "/cpu.stat");
    std::string k;
    uint64_t v;
    while (st >> k >> v)
      if (k == "usage_usec") cg += v / 1e6;
    for (const auto& p : kthread_stat) {
      int ppid;
      double cpu;
      if (StatTimes(p, &ppid, &cpu)) kt += cpu;
    }
    return {cg, kt};
  }
};

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

sockaddr_in ParseEndpoint(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) Die("endpoint " + s + ": want IPv4:PORT");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &sa.sin_addr) != 1) Die("endpoint " + s + ": bad IPv4");
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(s.substr(colon + 1))));
  return sa;
}

// ---- server --------------------------------------------------------------------

struct ServeOpts {
  uint16_t port = 8080;
  int req = 64, resp = 64, cpu = -1, max_seconds = 1800, nice = 0;
  std::string netns, cgroup;
};

int Serve(const ServeOpts& o) {
  Place(o.cgroup, o.netns, o.cpu, o.nice);
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ls < 0) Die(Err("socket"));
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(o.port);
  if (bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) Die(Err("bind 0.0.0.0:" + std::to_string(o.port)));
  if (listen(ls, 4096) != 0) Die(Err("listen"));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = ls;
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  // Per connection: bytes of the current request seen so far.
  std::vector<int> partial(1024, 0);
  std::vector<char> rbuf(65536), wbuf(std::max(o.resp, 1), 'r');
  auto deadline = Clock::now() + std::chrono::seconds(o.max_seconds);
  std::fprintf(stderr, "weft-l4bench serve: listening on 0.0.0.0:%u\n", o.port);
  epoll_event evs[256];
  while (Clock::now() < deadline) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        for (;;) {
          int c = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          if (static_cast<size_t>(c) >= partial.size()) partial.resize(c * 2, 0);
          partial[c] = 0;
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLRDHUP;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      bool closed = false;
      for (;;) {
        ssize_t r = read(fd, rbuf.data(), rbuf.size());
        if (r > 0) {
          int reqs = (partial[fd] + static_cast<int>(r)) / o.req;
          partial[fd] = (partial[fd] + static_cast<int>(r)) % o.req;
          for (int k = 0; k < reqs && !closed; k++)
            if (write(fd, wbuf.data(), o.resp) != o.resp) closed = true;  // tiny replies never block here
          if (r < static_cast<ssize_t>(rbuf.size())) break;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) closed = true;
        break;
      }
      if (closed) close(fd);  // also leaves the epoll set
    }
  }
  return 0;
}

// ---- load generator ------------------------------------------------------------

struct LoadOpts {
  std::string mode = "crr", dst, netns, cgroup, label, account_cgroup;
  double seconds = 5, warmup = 1;
  int concurrency = 16, req = 64, resp = 64, cpu = -1, nice = 0;
};

struct Conn {
  int fd = -1;
  int sent = 0, got = 0;
  bool connecting = false;
};

int Load(const LoadOpts& o) {
  Place(o.cgroup, o.netns, o.cpu, o.nice);
  signal(SIGPIPE, SIG_IGN);
  const bool crr = o.mode == "crr";
  if (!crr && o.mode != "rr") Die("--mode must be crr or rr");
  // Several destinations: each new connection takes the next (round robin), so
  // "direct" spreads over the same backends as the VIP variants do.
  std::vector<sockaddr_in> dsts;
  {
    std::stringstream ss(o.dst);
    std::string one_dst;
    while (std::getline(ss, one_dst, ','))
      if (!one_dst.empty()) dsts.push_back(ParseEndpoint(one_dst));
    if (dsts.empty()) Die("--dst: no endpoint");
  }
  size_t next_dst = 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(o.concurrency);
  std::vector<char> req(o.req, 'q'), rbuf(65536);
  uint64_t done = 0, errors = 0, connect_errors = 0;
  std::map<int, uint64_t> errnos;
  int one = 1;

  auto arm = [&](int idx, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = idx;
    epoll_ctl(ep, op, conns[idx].fd, &ev);
  };
  auto send_req = [&](int idx) -> bool {
    Conn& c = conns[idx];
    ssize_t w = write(c.fd, req.data(), o.req);
    if (w != o.req) return false;
    c.sent++;
    c.got = 0;
    return true;
  };
  // Opens connection idx; true if the connect is in progress or done.
  auto open_conn = [&](int idx) -> bool {
    Conn& c = conns[idx];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) Die(Err("socket"));
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c.sent = c.got = 0;
    const sockaddr_in& dst = dsts[next_dst++ % dsts.size()];
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) != 0 && errno != EINPROGRESS) {
      errnos[errno]++;
      connect_errors++;
      close(c.fd);
      c.fd = -1;
      return false;
    }
    c.connecting = true;
    arm(idx, EPOLLOUT, EPOLL_CTL_ADD);
    return true;
  };
  auto fail = [&](int idx, int err) {
    errors++;
    errnos[err]++;
    close(conns[idx].fd);
    conns[idx].fd = -1;
  };

  Attributable attr;
  attr.Init(o.account_cgroup);
  // Background: how busy the machine is without our load (other users' work).
  const CpuTimes bg0 = ReadProcStat();
  usleep(250 * 1000);
  const CpuTimes bgd = Delta(bg0, ReadProcStat());
  const double background_busy = bgd.total() ? 1.0 * bgd.busy() / bgd.total() : 0;

  for (int i = 0; i < o.concurrency; i++) open_conn(i);

  const auto start = Clock::now();
  const auto measure_at = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto end_at =
      measure_at + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  bool measuring = false;
  uint64_t done_at_start = 0, errors_at_start = 0;
  CpuTimes stat0;
  double self0 = 0;
  std::pair<double, double> attr0{};
  Clock::time_point t0;
  epoll_event evs[256];
  for (;;) {
    auto now = Clock::now();
    if (!measuring && now >= measure_at) {
      measuring = true;
      t0 = now;
      stat0 = ReadProcStat();
      self0 = SelfCpuSeconds();
      attr0 = attr.Seconds();
      done_at_start = done;
      errors_at_start = errors + connect_errors;
    }
    if (now >= end_at) break;
    // Reopen connections that failed (bounded: one attempt per slot per loop turn).
    for (int i = 0; i < o.concurrency; i++)
      if (conns[i].fd < 0) open_conn(i);
    int n = epoll_wait(ep, evs, 256, 50);
    for (int k = 0; k < n; k++) {
      int idx = static_cast<int>(evs[k].data.u32);
      Conn& c = conns[idx];
      if (c.fd < 0) continue;
      if (c.connecting) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
          connect_errors++;
          errnos[soerr]++;
          close(c.fd);
          c.fd = -1;
          continue;
        }
        c.connecting = false;
        arm(idx, EPOLLIN, EPOLL_CTL_MOD);
        if (!send_req(idx)) fail(idx, errno);
        continue;
      }
      ssize_t r = read(c.fd, rbuf.data(), rbuf.size());
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {
        fail(idx, r == 0 ? EPIPE : errno);
        continue;
      }
      c.got += static_cast<int>(r);
      if (c.got < o.resp) continue;
      done++;
      if (crr) {
        close(c.fd);  // the client closes first: TIME_WAIT stays on the client (tcp_tw_reuse)
        c.fd = -1;
        open_conn(idx);
      } else if (!send_req(idx)) {
        fail(idx, errno);
      }
    }
  }
  const auto t1 = Clock::now();
  CpuTimes stat1 = ReadProcStat();
  double self1 = SelfCpuSeconds();
  const auto attr1 = attr.Seconds();
  const double cg_s = attr1.first - attr0.first, kt_s = attr1.second - attr0.second;
  const bool acct = !o.account_cgroup.empty();
  for (auto& c : conns)
    if (c.fd >= 0) close(c.fd);

  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const uint64_t reqs = done - done_at_start;
  const CpuTimes d = Delta(stat0, stat1);
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  json errs = json::object();
  for (auto& [e, cnt] : errnos) errs[strerrorname_np(e) ? strerrorname_np(e) : std::to_string(e)] = cnt;
  json out = {
      {"kind", "cell"},
      {"label", o.label},
      {"mode", o.mode},
      {"dst", o.dst},
      {"concurrency", o.concurrency},
      {"seconds", secs},
      {"requests", reqs},
      {"rate", secs > 0 ? reqs / secs : 0.0},
      {"errors", errors + connect_errors - errors_at_start},
      {"errnos", errs},
      {"cpu_busy_s", d.busy() / hz},
      {"cpu_total_s", d.total() / hz},
      {"cpu_softirq_s", d.softirq / hz},
      {"cpu_system_s", (d.system + d.irq) / hz},
      {"cpu_user_s", (d.user + d.nice) / hz},
      {"cpu_us_per_req", reqs ? d.busy() / hz * 1e6 / reqs : 0.0},
      {"client_cpu_s", self1 - self0},
      {"background_busy", background_busy},
      {"cgroup_cpu_s", cg_s},
      {"kthread_cpu_s", kt_s},
      {"kthread_us_per_req", reqs && acct ? kt_s * 1e6 / reqs : 0.0},
      {"bench_cpu_s", acct ? cg_s + kt_s : 0.0},
      {"bench_cpu_us_per_req", reqs && acct ? (cg_s + kt_s) * 1e6 / reqs : 0.0},
      // Cores busy with work that is not the benchmark's (other users): noise.
      {"other_cores", !acct || secs <= 0 ? 0.0 : std::max(0.0, d.busy() / hz - cg_s - kt_s) / secs},
  };
  std::cout << out.dump() << std::endl;
  return reqs > 0 ? 0 : 2;
}

// ---- input generators ----------------------------------------------------------

std::string V4(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}
uint32_t ParseV4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) Die("bad IPv4 " + s);
  return ntohl(a.s_addr);
}

struct GenOpts {
  int services = 10, backends = 10, port = 80, target_port = 8080;
  std::string vip_base = "10.96.0.1", backend_base = "10.252.0.1";
  bool distinct = false;  // every service gets its own backends (else all share `backends` addresses)
};

std::string BackendAddr(const GenOpts& o, int svc, int b) {
  uint32_t base = ParseV4(o.backend_base);
  return V4(base + (o.distinct ? static_cast<uint32_t>(svc) * o.backends + b : b));
}

// kube-proxy's iptables mode: OUTPUT -> KUBE-SERVICES (one rule per service,
// matched linearly) -> KUBE-SVC-x (statistic random per endpoint) -> KUBE-SEP-y (DNAT).
int GenIptables(const GenOpts& o) {
  uint32_t vip = ParseV4(o.vip_base);
  std::string out;
  out.reserve(static_cast<size_t>(o.services) * (o.backends + 1) * 200);
  char line[512];
  out += "*nat\n:KUBE-SERVICES - [0:0]\n";
  for (int i = 0; i < o.services; i++) {
    std::snprintf(line, sizeof(line), ":KUBE-SVC-%07d - [0:0]\n", i);
    out += line;
    for (int b = 0; b < o.backends; b++) {
      std::snprintf(line, sizeof(line), ":KUBE-SEP-%07d-%03d - [0:0]\n", i, b);
      out += line;
    }
  }
  out += "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n";
  for (int i = 0; i < o.services; i++) {
    std::snprintf(line, sizeof(line),
                  "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/svc-%d:http cluster IP\" -m tcp "
                  "--dport %d -j KUBE-SVC-%07d\n",
                  V4(vip + i).c_str(), i, o.port, i);
    out += line;
  }
  for (int i = 0; i < o.services; i++) {
    for (int b = 0; b < o.backends; b++) {
      if (b < o.backends - 1)
        std::snprintf(line, sizeof(line),
                      "-A KUBE-SVC-%07d -m comment --comment \"bench/svc-%d:http\" -m statistic --mode random "
                      "--probability %.11f -j KUBE-SEP-%07d-%03d\n",
                      i, i, 1.0 / (o.backends - b), i, b);
      else
        std::snprintf(line, sizeof(line), "-A KUBE-SVC-%07d -m comment --comment \"bench/svc-%d:http\" -j KUBE-SEP-%07d-%03d\n",
                      i, i, i, b);
      out += line;
      std::snprintf(line, sizeof(line),
                    "-A KUBE-SEP-%07d-%03d -p tcp -m comment --comment \"bench/svc-%d:http\" -m tcp -j DNAT "
                    "--to-destination %s:%d\n",
                    i, b, i, BackendAddr(o, i, b).c_str(), o.target_port);
      out += line;
    }
  }
  out += "COMMIT\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

// weft-agent input: one v1 Service per VIP and the WorkloadEntries it selects.
int GenConfig(const GenOpts& o) {
  uint32_t vip = ParseV4(o.vip_base);
  std::string out;
  char buf[1024];
  for (int i = 0; i < o.services; i++) {
    std::string app = o.distinct ? "svc-" + std::to_string(i) : "bench";
    std::snprintf(buf, sizeof(buf),
                  "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%d\n  namespace: bench\nspec:\n"
                  "  clusterIP: %s\n  selector:\n    app: %s\n  ports:\n  - name: http\n    port: %d\n"
                  "    targetPort: %d\n    protocol: TCP\n",
                  i, V4(vip + i).c_str(), app.c_str(), o.port, o.target_port);
    out += buf;
  }
  const int groups = o.distinct ? o.services : 1;
  for (int g = 0; g < groups; g++) {
    std::string app = o.distinct ? "svc-" + std::to_string(g) : "bench";
    for (int b = 0; b < o.backends; b++) {
      std::snprintf(buf, sizeof(buf),
                    "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: %s-%d\n"
                    "  namespace: bench\nspec:\n  address: %s\n  labels:\n    app: %s\n  ports:\n    http: %d\n",
                    app.c_str(), b, BackendAddr(o, g, b).c_str(), app.c_str(), o.target_port);
      out += buf;
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

// ---- report --------------------------------------------------------------------

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Cells are labelled "<variant>/<size>/<mode>/<rep>". Ratios are paired: each
// repetition's weft (or iptables) cell against the direct cell measured next to
// it, then the median of those ratios, so slow drifts of a shared machine cancel.
struct ReportOpts {
  std::string in_path, json_path;
  std::string baseline = "direct";                              // the variant ratios are taken against
  std::vector<std::string> variants = {"direct", "weft", "iptables"};  // rows, in this order
  std::string size_name = "services";                           // what the label's size counts
};

int Report(const ReportOpts& ro) {
  const std::string& in_path = ro.in_path;
  const std::string& json_path = ro.json_path;
  std::ifstream in(in_path);
  if (!in) Die("open " + in_path);
  struct Key {
    std::string variant, mode;
    int size;
    bool operator<(const Key& o) const { return std::tie(size, mode, variant) < std::tie(o.size, o.mode, o.variant); }
  };
  std::map<Key, std::map<int, json>> cells;  // key -> rep -> cell
  std::vector<json> programs;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.value("kind", "") == "program") {
      programs.push_back(j);
      continue;
    }
    if (j.value("kind", "") != "cell") continue;
    std::stringstream ss(j.value("label", ""));
    std::string variant, size, mode, rep;
    std::getline(ss, variant, '/');
    std::getline(ss, size, '/');
    std::getline(ss, mode, '/');
    std::getline(ss, rep, '/');
    if (rep.empty()) continue;
    cells[{variant, mode, std::stoi(size)}][std::stoi(rep)] = j;
  }
  json rows = json::array();
  std::set<std::pair<int, std::string>> groups;
  for (auto& [k, _] : cells) groups.insert({k.size, k.mode});
  const std::string xb = "x " + ro.baseline;
  std::printf("\n%-8s %-4s %-14s %10s %8s | %9s %8s | %9s %8s | %7s %5s %6s %4s\n", ro.size_name.c_str(), "mode",
              "variant", "rate/s", xb.c_str(), "mach us/r", xb.c_str(), "attr us/r", xb.c_str(), "softirq", "other",
              "errors", "reps");
  for (auto& [size, mode] : groups) {
    auto dit = cells.find({ro.baseline, mode, size});
    for (const std::string& v : ro.variants) {
      auto it = cells.find({v, mode, size});
      if (it == cells.end()) continue;
      std::vector<double> rate, cpu, acpu, rr, cr, ar, soft, bg, kthr;
      uint64_t errors = 0;
      for (auto& [rep, c] : it->second) {
        rate.push_back(c["rate"]);
        cpu.push_back(c["cpu_us_per_req"]);
        acpu.push_back(c.value("bench_cpu_us_per_req", 0.0));
        bg.push_back(c.value("other_cores", 0.0));
        kthr.push_back(c.value("kthread_us_per_req", 0.0));
        soft.push_back(c.value("cpu_busy_s", 0.0) > 0 ? c.value("cpu_softirq_s", 0.0) / c.value("cpu_busy_s", 1.0) : 0);
        errors += c.value("errors", 0ull);
        if (dit == cells.end()) continue;
        auto d = dit->second.find(rep);
        if (d == dit->second.end()) continue;
        const json& dc = d->second;
        if (dc["rate"].get<double>() > 0) rr.push_back(c["rate"].get<double>() / dc["rate"].get<double>());
        if (dc["cpu_us_per_req"].get<double>() > 0)
          cr.push_back(c["cpu_us_per_req"].get<double>() / dc["cpu_us_per_req"].get<double>());
        if (dc.value("bench_cpu_us_per_req", 0.0) > 0)
          ar.push_back(c.value("bench_cpu_us_per_req", 0.0) / dc.value("bench_cpu_us_per_req", 0.0));
      }
      json row = {{ro.size_name, size},
                  {"mode", mode},
                  {"variant", v},
                  {"reps", rate.size()},
                  {"rate_median", Median(rate)},
                  {"rate_vs_" + ro.baseline, Median(rr)},
                  {"machine_cpu_us_per_req_median", Median(cpu)},
                  {"machine_cpu_vs_" + ro.baseline, Median(cr)},
                  {"attributable_cpu_us_per_req_median", Median(acpu)},
                  {"attributable_cpu_vs_" + ro.baseline, Median(ar)},
                  {"kthread_us_per_req_median", Median(kthr)},
                  {"softirq_share", Median(soft)},
                  {"other_cores_median", Median(bg)},
                  {"errors", errors},
                  {"rates", rate},
                  {"machine_cpu_us_per_req", cpu},
                  {"attributable_cpu_us_per_req", acpu}};
      rows.push_back(row);
      std::printf("%-8d %-4s %-14s %10.0f %8.3f | %9.2f %8.3f | %9.2f %8.3f %9.2f | %6.0f%% %5.2f %6llu %4zu\n",
                  size, mode.c_str(), v.c_str(), Median(rate), Median(rr), Median(cpu), Median(cr), Median(acpu), Median(ar),
                  Median(kthr),
                  100 * Median(soft), Median(bg), static_cast<unsigned long long>(errors), rate.size());
    }
  }
  // Programming: median per variant (batch / no-batch).
  json prog_rows = json::array();
  std::map<std::string, std::vector<json>> by_variant;
  for (auto& p : programs) by_variant[p.value("variant", "?")].push_back(p);
  if (!by_variant.empty())
    std::printf("\n%-10s %9s %9s %10s %12s %12s %12s %5s\n", "program", "services", "backends", "ready s",
                "reconcile s", "agent VmHWM", "maps memlock", "runs");
  for (auto& [v, ps] : by_variant) {
    std::vector<double> secs, rss, recon, maps;
    for (auto& p : ps) {
      if (!p.value("ok", false)) continue;
      secs.push_back(p.value("ready_seconds", 0.0));
      rss.push_back(p.value("vmhwm_kib", 0.0));
      maps.push_back(p.value("maps_memlock_kib", 0.0));
      if (p.contains("reconcile_duration_sum_s") && p["reconcile_duration_sum_s"].is_number())
        recon.push_back(p["reconcile_duration_sum_s"].get<double>());
    }
    json row = {{"variant", v},
                {"services", ps[0].value("services", 0)},
                {"backends_per_service", ps[0].value("backends", 0)},
                {"ready_seconds_median", Median(secs)},
                {"reconcile_seconds_median", Median(recon)},
                {"vmhwm_mib_median", Median(rss) / 1024},
                {"maps_memlock_mib_median", Median(maps) / 1024},
                {"ok_runs", secs.size()},
                {"runs", ps}};
    prog_rows.push_back(row);
    std::printf("%-10s %9d %9d %10.2f %12.3f %8.1f MiB %8.1f MiB %2zu/%zu\n", v.c_str(), ps[0].value("services", 0),
                ps[0].value("backends", 0), Median(secs), Median(recon), Median(rss) / 1024, Median(maps) / 1024,
                secs.size(), ps.size());
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << json{{"datapath", rows}, {"programming", prog_rows}}.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weft-l4bench: L4 benchmark load generator, server and report"};
  app.require_subcommand(1);

  ServeOpts so;
  auto* serve = app.add_subcommand("serve", "request/response server (bounded by --max-seconds)");
  serve->add_option("--port", so.port);
  serve->add_option("--req", so.req);
  serve->add_option("--resp", so.resp);
  serve->add_option("--cpu", so.cpu, "pin to this CPU");
  serve->add_option("--netns", so.netns, "enter /run/netns/NAME first");
  serve->add_option("--cgroup", so.cgroup, "join this cgroup2 directory first");
  serve->add_option("--max-seconds", so.max_seconds);
  serve->add_option("--nice", so.nice, "scheduling niceness (-20..19)");

  LoadOpts lo;
  auto* load = app.add_subcommand("load", "one measured cell; prints one JSON line");
  load->add_option("--mode", lo.mode, "crr or rr");
  load->add_option("--dst", lo.dst, "IPv4:PORT[,IPv4:PORT...] (round robin per connection)")->required();
  load->add_option("--seconds", lo.seconds, "measured window");
  load->add_option("--warmup", lo.warmup, "unmeasured warm-up before the window");
  load->add_option("--concurrency", lo.concurrency, "connections in flight");
  load->add_option("--req", lo.req);
  load->add_option("--resp", lo.resp);
  load->add_option("--cpu", lo.cpu, "pin to this CPU");
  load->add_option("--netns", lo.netns, "enter /run/netns/NAME first");
  load->add_option("--cgroup", lo.cgroup, "join this cgroup2 directory first");
  load->add_option("--label", lo.label, "variant/services/mode/rep");
  load->add_option("--nice", lo.nice, "scheduling niceness (-20..19)");
  load->add_option("--account-cgroup", lo.account_cgroup,
                   "cgroup2 dir whose usage (plus ksoftirqd) is the benchmark's attributable CPU");

  GenOpts go;
  auto add_gen = [&](CLI::App* sc) {
    sc->add_option("--services", go.services);
    sc->add_option("--backends", go.backends, "per service");
    sc->add_option("--vip-base", go.vip_base);
    sc->add_option("--backend-base", go.backend_base);
    sc->add_option("--port", go.port);
    sc->add_option("--target-port", go.target_port);
    sc->add_flag("--distinct", go.distinct, "distinct backend addresses per service");
  };
  auto* gipt = app.add_subcommand("gen-iptables", "kube-proxy style iptables-restore input on stdout");
  add_gen(gipt);
  auto* gcfg = app.add_subcommand("gen-config", "weft-agent YAML on stdout");
  add_gen(gcfg);

  ReportOpts ro;
  auto* report = app.add_subcommand("report", "medians and ratios of a cells file");
  report->add_option("--in", ro.in_path)->required();
  report->add_option("--json", ro.json_path);
  report->add_option("--baseline", ro.baseline, "variant the ratios are paired against (default direct)");
  report->add_option("--variants", ro.variants, "rows, in order (default direct,weft,iptables)")->delimiter(',');
  report->add_option("--size-name", ro.size_name, "what the size in the labels counts (default services)");

  CLI11_PARSE(app, argc, argv);
  if (go.services < 1 || go.backends < 1) Die("--services and --backends must be >= 1");
  if (lo.concurrency < 1 || lo.concurrency > 4096) Die("--concurrency must be in 1..4096");
  if (lo.seconds <= 0 || lo.seconds > 600 || lo.warmup < 0 || lo.warmup > 60) Die("--seconds in (0,600], --warmup in [0,60]");
  if (so.req < 1 || lo.req < 1 || so.resp < 1 || lo.resp < 1) Die("--req/--resp must be >= 1");
  if (*serve) return Serve(so);
  if (*load) return Load(lo);
  if (*gipt) return GenIptables(go);
  if (*gcfg) return GenConfig(go);
  if (*report) return Report(ro);
  return 1;
}
