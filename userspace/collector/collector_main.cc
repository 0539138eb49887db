// tally-collector: parse flags, open the database, bind, serve.
#include <cstdio>

#include "collector/collector_options.h"
#include "collector/collector_server.h"
#include "tally/log.h"

namespace {

int serve(const tally::collector::CollectorOptions& options) {
  auto server = tally::collector::CollectorServer::create(options);
  if (!server.ok()) {
    tally::log::error("{}", server.error().message());
    return 1;
  }
  // On stdout, one line, flushed: scripts and tests wait for it to know the
  // port (with --listen HOST:0) and that requests will be served.
  std::printf("listening on %s, db %s\n", (*server)->listening_on().c_str(),
              options.db_path.c_str());
  std::fflush(stdout);
  return (*server)->run();
}

}  // namespace

int main(int argc, char** argv) {
  tally::log::set_program("tally-collector");
  auto cmd = tally::collector::parse_collector_command_line(argc, argv);
  if (!cmd.options) return cmd.exit_code;
  tally::log::set_level(tally::log::parse_level(cmd.options->log_level));
  // Asio throws from constructors (a signal set, a thread pool) when the
  // system refuses a resource: one line and exit 1, not terminate().
  try {
    return serve(*cmd.options);
  } catch (const std::exception& e) {
    tally::log::error("{}", e.what());
    return 1;
  }
}
