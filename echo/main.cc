// weft-echo: the workload of a lab pod. See server.hpp.
//   weft-echo --pod NAME --namespace NS --version V --service-account SA
//             --http-port P [--http-port P2 ...] [--listen ADDR]
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "echo/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"weft-echo: HTTP/1.1 JSON echo, raw TCP echo and UDP echo for Weft labs"};
  weft::echo::ServerOptions opts;
  std::vector<int> ports;
  app.add_option("--pod", opts.id.pod, "pod name reported in answers")->required();
  app.add_option("--namespace", opts.id.ns, "namespace reported in answers")->default_val("default");
  app.add_option("--version", opts.id.version, "version label reported in answers");
  app.add_option("--service-account", opts.id.service_account, "service account reported in answers");
  app.add_option("--http-port", ports, "TCP+UDP port to serve (repeatable; none: an idle client pod)")->check(CLI::Range(1, 65535));
  app.add_option("--listen", opts.listen, "address to bind; :: is dual-stack")->default_val("::");
  CLI11_PARSE(app, argc, argv);
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  for (int p : ports) opts.ports.push_back(static_cast<uint16_t>(p));

  // Every thread inherits this mask; the main thread takes the signals.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (auto st = weft::echo::Start(opts); !st.ok()) {
    std::fprintf(stderr, "weft-echo: %s\n", st.message().c_str());
    return 2;
  }
  std::string plist;
  for (auto p : opts.ports) plist += (plist.empty() ? "" : ",") + std::to_string(p);
  std::fprintf(stderr, "weft-echo: pod %s serving tcp+udp on %s port(s) %s\n", opts.id.pod.c_str(),
               opts.listen.c_str(), plist.empty() ? "(none)" : plist.c_str());
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  std::fprintf(stderr, "weft-echo: pod %s: signal %d, exiting\n", opts.id.pod.c_str(), sig);
  std::fflush(stderr);
  _exit(0);  // connection threads are detached: do not run static destructors under them
}
