// weftctl: Weft's command-line tool. Dispatches to the command groups.
#include <cstdio>

#include "cli/bpf/bpf.hpp"
#include "cli/command.hpp"
#include "cli/ctl/ctl.hpp"
#include "cli/flows/flows.hpp"
#include "cli/lab/lab.hpp"
#include "cli/trace/trace.hpp"
#include "weft/transport.hpp"

int main(int argc, char** argv) {
  weft::transport::RestrictToTls13();  // before any thread
  CLI::App app{"weftctl: operate Weft, the eBPF service mesh\n"
               "exit codes: 0 ok, 1 rejected input (bad flags or files, INVALID_ARGUMENT/NOT_FOUND from the "
               "controller), 2 controller unreachable or environment failure (diff: see weftctl diff --help)"};
  app.require_subcommand(1);
  int exit_code = weft::cli::kExitOk;
  // Command groups; add new ones here (each in its own cli/<group>/ directory).
  const weft::cli::RegisterFn groups[] = {
      &weft::cli::ctl::Register,
#ifdef WEFT_HAVE_CONFIG
      &weft::cli::ctl::RegisterValidate,
#endif
      &weft::cli::lab::Register,
      &weft::cli::bpf::Register,
      &weft::cli::flows::Register,
      &weft::cli::trace::Register,
  };
  for (auto reg : groups) reg(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return weft::cli::kExitBadInput;
  }
  return exit_code;
}
