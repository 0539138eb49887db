// Test helper: a real tally-collector process on loopback, restartable on
// the same port and database.
#pragma once

#include <csignal>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http_get.h"
#include "subprocess.h"

namespace tally::test {

class CollectorRun {
 public:
  explicit CollectorRun(std::string db_path, std::vector<std::string> extra = {})
      : db_(std::move(db_path)), extra_(std::move(extra)) {
    start();
  }

  // Starts on the previous port (or any free one the first time).
  void start() {
    std::vector<std::string> argv{COLLECTOR_PATH, "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--db", db_};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    proc_ = std::make_unique<Subprocess>(argv);
    auto line =
        proc_->wait_for_line([](const std::string& l) { return l.rfind("listening on", 0) == 0; },
                             std::chrono::seconds(30));
    ASSERT_TRUE(line.has_value()) << proc_->stderr_text();
    // "listening on 127.0.0.1:PORT, db PATH"
    const auto colon = line->find(':', std::string("listening on ").size());
    port_ = static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)));
  }

  void stop(int signo = SIGTERM) {
    proc_->signal(signo);
    proc_->wait(std::chrono::seconds(30));
    proc_.reset();
  }

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  nlohmann::json get(const std::string& path) const {
    HttpResult r = http_get(url(path));
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return nlohmann::json::parse(r.body, nullptr, false);
  }

 private:
  std::string db_;
  std::vector<std::string> extra_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Subprocess> proc_;
};

}  // namespace tally::test
