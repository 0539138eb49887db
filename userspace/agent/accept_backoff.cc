#include "agent/accept_backoff.h"

#include <algorithm>

#include <boost/asio/error.hpp>

#include "tally/log.h"

namespace tally::agent {

std::chrono::milliseconds AcceptBackoff::failed(const boost::system::error_code& ec) {
  ++failures_;
  last_failure_ = std::chrono::steady_clock::now();
  if (!failing_) {
    log::warning(
        "{}: accepting connections fails: {}; pausing between attempts (up to {} ms) "
        "until it works again",
        listener_, ec.message(), kMaxPause.count());
    failing_ = true;
    failures_logged_ = failures_ - 1;
  }
  pause_ = pause_.count() == 0 ? kFirstPause : std::min(pause_ * 2, kMaxPause);
  return pause_;
}

void AcceptBackoff::succeeded() {
  pause_ = std::chrono::milliseconds(0);
  if (!failing_ || std::chrono::steady_clock::now() - last_failure_ < kQuietPeriod) return;
  log::info("{}: accepting connections again ({} attempts failed)", listener_,
            failures_ - failures_logged_);
  failing_ = false;
}

bool out_of_descriptors(const boost::system::error_code& ec) {
  return ec == boost::asio::error::no_descriptors ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

}  // namespace tally::agent
