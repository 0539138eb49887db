// tally-collector: parse flags, open the database, bind, serve.
#include <cstdio>

#include "collector_options.h"
#include "collector_server.h"
#include "tally/log.h"

namespace {

}  // namespace

int main(int argc, char** argv) {
  tally::log::set_program("tally-collector");
  auto cmd = tally::collector::parse_collector_command_line(argc, argv);
  if (!cmd.options) return cmd.exit_code;
  const auto& options = *cmd.options;
  tally::log::set_level(tally::log::parse_level(options.log_level));

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
