// ConnectionTable: who gets closed when a listener is at its bounds.
#include "agent/connection_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tally::agent {
namespace {

// Records which connections the table closed, by label.
struct Closed {
  std::vector<std::string> labels;
  ConnectionTable::Close of(std::string label) {
    return [this, label] { labels.push_back(label); };
  }
};

TEST(ConnectionTable, APeerOverItsBoundLosesItsOwnOldestIdleConnection) {
  ConnectionTable table("test", {10, 3});
  Closed closed;
  table.admit("mallory", closed.of("m1"));
  table.admit("alice", closed.of("a1"));
  const auto m2 = table.admit("mallory", closed.of("m2"));
  table.admit("mallory", closed.of("m3"));
  table.set_busy(m2, true);
  EXPECT_TRUE(closed.labels.empty());

  table.admit("mallory", closed.of("m4"));  // 4th: m1 goes
  table.admit("mallory", closed.of("m5"));  // m2 is busy: m3 goes
  EXPECT_EQ(closed.labels, (std::vector<std::string>{"m1", "m3"}));
  EXPECT_EQ(table.size(), 4u);  // a1, m2, m4, m5
  EXPECT_EQ(table.evicted(), 2u);
}

TEST(ConnectionTable, AtTheTotalBoundTheHeaviestPeerGivesWay) {
  ConnectionTable table("test", {4, 3});
  Closed closed;
  table.admit("alice", closed.of("a1"));
  table.admit("bob", closed.of("b1"));
  table.admit("bob", closed.of("b2"));
  table.admit("carol", closed.of("c1"));
  table.admit("dave", closed.of("d1"));  // full: bob holds most, b1 goes
  EXPECT_EQ(closed.labels, (std::vector<std::string>{"b1"}));
  EXPECT_EQ(table.size(), 4u);
}

TEST(ConnectionTable, BusyConnectionsGoOnlyWhenNoneIsIdle) {
  ConnectionTable table("test", {10, 2});
  Closed closed;
  const auto a = table.admit("p", closed.of("a"));
  const auto b = table.admit("p", closed.of("b"));
  table.set_busy(a, true);
  table.set_busy(b, true);
  table.admit("p", closed.of("c"));
  EXPECT_EQ(closed.labels, (std::vector<std::string>{"a"}));
}

TEST(ConnectionTable, RemovedAndClosedConnectionsAreForgotten) {
  ConnectionTable table("test", {10, 2});
  Closed closed;
  const auto a = table.admit("p", closed.of("a"));
  table.admit("p", closed.of("b"));
  table.remove(a);
  table.remove(a);  // twice: ignored
  EXPECT_EQ(table.size(), 1u);
  table.admit("p", closed.of("c"));
  EXPECT_TRUE(closed.labels.empty());

  EXPECT_TRUE(table.close_oldest_idle());
  EXPECT_EQ(closed.labels, (std::vector<std::string>{"b"}));
  table.close_all();
  EXPECT_EQ(closed.labels, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.close_oldest_idle());
}

}  // namespace
}  // namespace tally::agent
