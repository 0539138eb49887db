// How long a listener pauses after accept() fails.
//
// accept() fails for want of descriptors (EMFILE, ENFILE) or kernel memory
// while the listening socket stays readable, so retrying at once spins a
// core and answers nobody. The pause starts short and doubles to a cap while
// the failures go on; a success resets it. One line is logged when the
// failures start and one when accepting works again.
// Not thread-safe: use it from the listener's io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include <boost/system/error_code.hpp>

namespace tally::agent {

class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirstPause{10};
  static constexpr std::chrono::milliseconds kMaxPause{1000};
  static constexpr std::chrono::seconds kQuietPeriod{10};

  // `listener` names it in log lines: "control socket".
  explicit AcceptBackoff(std::string listener) : listener_(std::move(listener)) {}

  // accept() failed with `ec`: the pause before the next attempt.
  std::chrono::milliseconds failed(const boost::system::error_code& ec);
  // accept() worked.
  void succeeded();

  // Failed accepts since start.
  std::uint64_t failures() const { return failures_; }

 private:
  std::string listener_;
  std::chrono::milliseconds pause_{0};
  std::uint64_t failures_ = 0;
  std::uint64_t failures_logged_ = 0;  // failures_ when the episode began
  std::chrono::steady_clock::time_point last_failure_{};
  bool failing_ = false;
};

// True for the accept() errors that mean "out of descriptors".
bool out_of_descriptors(const boost::system::error_code& ec);

}  // namespace tally::agent
