#include "collector/token_reloader.h"

#include <csignal>
#include <memory>

#include "collector/token_auth.h"
#include "tally/log.h"

namespace tally::collector {

TokenReloader::TokenReloader(boost::asio::io_context& io, std::string path, Api& api)
    : signals_(io, SIGHUP), path_(std::move(path)), api_(api) {}

void TokenReloader::start() { do_wait(); }

void TokenReloader::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  signals_.cancel(ignored);
}

void TokenReloader::do_wait() {
  signals_.async_wait([this](const boost::system::error_code& ec, int /*signo*/) {
    if (ec || stopped_) return;
    reload();
    do_wait();
  });
}

void TokenReloader::reload() {
  if (path_.empty()) {
    log::info("received SIGHUP: nothing to reload (no --token-file)");
    return;
  }
  auto credentials = Credentials::load(path_);
  if (!credentials.ok()) {
    log::error("received SIGHUP: keeping the tokens loaded before: {}",
               credentials.error().message());
    return;
  }
  log::info("received SIGHUP: reloaded {}: {} credentials, {} tokens", path_,
            credentials->credentials(), credentials->tokens());
  api_.set_credentials(std::make_shared<const Credentials>(std::move(credentials).value()));
}

}  // namespace tally::collector
