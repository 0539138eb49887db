#include "collector/token_reloader.h"

#include <csignal>
#include <memory>

#include "collector/token_auth.h"
#include "tally/log.h"

namespace tally::collector {

TokenReloader::TokenReloader(boost::asio::io_context& io, std::string path, std::string read_path,
                             Api& api)
    : signals_(io, SIGHUP), path_(std::move(path)), read_path_(std::move(read_path)), api_(api) {}

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

namespace {

// The file's tokens, or nullptr (logged) when it no longer loads.
std::shared_ptr<const Credentials> load(const std::string& path) {
  auto credentials = Credentials::load(path);
  if (!credentials.ok()) {
    log::error("received SIGHUP: keeping the tokens loaded before: {}",
               credentials.error().message());
    return nullptr;
  }
  log::info("received SIGHUP: reloaded {}: {} credentials, {} tokens", path,
            credentials->credentials(), credentials->tokens());
  return std::make_shared<const Credentials>(std::move(credentials).value());
}

}  // namespace

void TokenReloader::reload() {
  if (path_.empty() && read_path_.empty()) {
    log::info("received SIGHUP: nothing to reload (no --token-file, no --read-token-file)");
    return;
  }
  if (!path_.empty()) {
    if (auto credentials = load(path_)) api_.set_credentials(std::move(credentials));
  }
  if (!read_path_.empty()) {
    if (auto credentials = load(read_path_)) api_.set_read_credentials(std::move(credentials));
  }
}

}  // namespace tally::collector
