// Giving back start-up pages in this very process: the resident set
// shrinks, and everything still works afterwards, calls through relocated
// pointers (GOT, vtables, typeinfo) included, which would crash if a
// mapping holding written pages had been dropped.
#include "agent/start_up_pages.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace tally::agent {
namespace {

std::uint64_t rss_file_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssFile:", 0) == 0) return std::stoull(line.substr(8));
  }
  return 0;
}

struct Shape {
  virtual ~Shape() = default;
  virtual int corners() const = 0;
};
struct Square final : Shape {
  int corners() const override { return 4; }
};

TEST(StartUpPages, AreGivenBackAndEverythingStillWorksAfterwards) {
  const std::uint64_t before = rss_file_kib();
  auto dropped = drop_start_up_pages();
  ASSERT_TRUE(dropped.ok()) << dropped.error().message();
  const std::uint64_t after = rss_file_kib();
  EXPECT_GT(dropped->mappings, 0u);
  EXPECT_GT(dropped->bytes, 0u);
  EXPECT_LT(after, before) << "RssFile " << before << " kB before, " << after << " kB after";

  // Library calls through the GOT, a virtual call, an exception (unwinder
  // tables, typeinfo), SQLite: all map their pages back in on first touch.
  EXPECT_EQ(fmt::format("{:>5}", 42), "   42");
  std::unique_ptr<Shape> shape = std::make_unique<Square>();
  EXPECT_EQ(shape->corners(), 4);
  try {
    throw std::runtime_error("still unwinds");
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "still unwinds");
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  EXPECT_EQ(
      sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);

  auto again = drop_start_up_pages();
  ASSERT_TRUE(again.ok()) << again.error().message();
}

}  // namespace
}  // namespace tally::agent
