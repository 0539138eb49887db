// Re-reads the token files (--token-file, --read-token-file) on SIGHUP, so that tokens can be
// added, rotated and revoked without a restart (and without dropping connections). A file that no
// longer parses is refused with its file:line message in the log, and the tokens loaded before stay
// in use.
//
// Without a token file SIGHUP is only logged: it is still caught, so that
// its default action (terminating the process) never applies.
//
// Runs on the io thread, like Api::precheck(), which reads the tokens.
#pragma once

#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "collector/api.h"

namespace tally::collector {

class TokenReloader {
 public:
  // The --token-file and the --read-token-file, each possibly empty.
  TokenReloader(boost::asio::io_context& io, std::string path, std::string read_path, Api& api);

  void start();
  // Cancels the wait, so that io_context::run() can return.
  void stop();

 private:
  void do_wait();
  void reload();

  boost::asio::signal_set signals_;
  std::string path_;
  std::string read_path_;
  Api& api_;
  bool stopped_ = false;
};

}  // namespace tally::collector
