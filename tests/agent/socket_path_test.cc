// What tallyd does with what it finds at --socket PATH: a stale socket is
// replaced; anything else is left alone and named in the error; the
// directory must be one only root can change. Real tallyd (procfs backend:
// no BPF needed to get as far as the socket), real files.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tally_cli.h"
#include "tallyd_run.h"
#include "temp_dir.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

RunResult start_tallyd(const TempDir& dir, const std::string& socket) {
  return run({TALLYD_PATH, "--backend", "procfs", "--interval", "1", "--outbox", dir / "outbox.db",
              "--socket", socket},
             30s);
}

std::string contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A Unix socket bound at path; listening (live) or closed at once (stale).
struct BoundSocket {
  int fd = -1;
  BoundSocket(const std::string& path, bool keep_listening) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
    EXPECT_EQ(::listen(fd, 4), 0);
    if (!keep_listening) {
      ::close(fd);
      fd = -1;
    }
  }
  ~BoundSocket() {
    if (fd >= 0) ::close(fd);
  }
};

class SocketPath : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "not root: tallyd's procfs backend reads every process";
  }
};

TEST_F(SocketPath, AnythingButAStaleSocketIsLeftAloneAndNamed) {
  TempDir dir;
  struct Case {
    std::string name;
    std::function<void(const std::string& path)> make;
    std::string says;
  };
  const std::string target = dir / "target.txt";
  std::ofstream(target) << "not yours\n";
  const std::vector<Case> cases = {
      {"file", [](const std::string& p) { std::ofstream(p) << "precious\n"; }, "a regular file"},
      {"empty-file", [](const std::string& p) { std::ofstream{p}; }, "a regular file"},
      {"directory",
       [](const std::string& p) {
         std::filesystem::create_directory(p);
         std::ofstream(p + "/inside") << "precious\n";
       },
       "a directory"},
      {"symlink", [&](const std::string& p) { std::filesystem::create_symlink(target, p); },
       "a symbolic link"},
      {"dangling-symlink",
       [&](const std::string& p) { std::filesystem::create_symlink(dir / "nowhere", p); },
       "a symbolic link"},
      {"fifo", [](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0); }, "a FIFO"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir / (c.name + ".sock");
    c.make(path);
    struct stat before {};
    ASSERT_EQ(::lstat(path.c_str(), &before), 0);

    const RunResult r = start_tallyd(dir, path);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;

    struct stat after {};
    ASSERT_EQ(::lstat(path.c_str(), &after), 0) << path << " was removed";
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_EQ(after.st_mode, before.st_mode);
  }
  EXPECT_EQ(contents(dir / "file.sock"), "precious\n");
  EXPECT_EQ(contents(dir / "directory.sock/inside"), "precious\n");
  EXPECT_EQ(contents(target), "not yours\n");
}

TEST_F(SocketPath, ALiveSocketIsInUseAndAStaleOneIsReplaced) {
  TempDir dir;
  const std::string live = dir / "live.sock";
  BoundSocket listener(live, true);
  const RunResult r = start_tallyd(dir, live);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  struct stat st {};
  ASSERT_EQ(::lstat(live.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  // Live but not accepting, its backlog full (a hung tallyd): still in use,
  // and finding that out must not hang this one.
  const std::string hung = dir / "hung.sock";
  BoundSocket stuck(hung, true);
  std::vector<int> queued;
  for (int i = 0; i < 64; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, hung.data(), hung.size());
    const bool queued_one = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    queued.push_back(fd);
    if (!queued_one) break;  // EAGAIN: the backlog is full
  }
  const RunResult h = start_tallyd(dir, hung);
  EXPECT_EQ(h.exit_code, 1) << h.err;
  EXPECT_NE(h.err.find("in use"), std::string::npos) << h.err;
  for (int fd : queued) ::close(fd);

  const std::string stale = dir / "stale.sock";
  { BoundSocket gone(stale, false); }
  TallydRun agent({"--backend", "procfs", "--interval", "1", "--socket", stale});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  auto status = run_tally(stale, {"status"}, 30s);
  EXPECT_NE(status.exit_code, 2) << status.err;
  EXPECT_EQ(agent.stop(), 0);
  // Its own socket is removed on the way out.
  EXPECT_FALSE(std::filesystem::exists(stale));
}

TEST_F(SocketPath, ItsDirectoryMustBeOneOnlyRootCanChange) {
  TempDir dir;
  const std::string open_dir = dir / "open";
  std::filesystem::create_directory(open_dir);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  RunResult r = start_tallyd(dir, open_dir + "/tally.sock");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(open_dir), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("writable by everyone"), std::string::npos) << r.err;

  const std::string group_dir = dir / "group";
  std::filesystem::create_directory(group_dir);
  ASSERT_EQ(::chmod(group_dir.c_str(), 0775), 0);
  r = start_tallyd(dir, group_dir + "/tally.sock");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("writable by its group"), std::string::npos) << r.err;

  const std::string theirs = dir / "theirs";
  std::filesystem::create_directory(theirs);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  r = start_tallyd(dir, theirs + "/tally.sock");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("owned by uid 65534"), std::string::npos) << r.err;

  // A directory that is a symlink to one of those is judged by its target.
  const std::string link = dir / "link";
  std::filesystem::create_directory_symlink(theirs, link);
  r = start_tallyd(dir, link + "/tally.sock");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("owned by uid 65534"), std::string::npos) << r.err;

  // A sticky one (like /tmp) is fine: others cannot remove what is ours.
  const std::string sticky = dir / "sticky";
  std::filesystem::create_directory(sticky);
  ASSERT_EQ(::chmod(sticky.c_str(), 01777), 0);
  TallydRun agent({"--backend", "procfs", "--interval", "1", "--socket", sticky + "/tally.sock"});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  EXPECT_EQ(agent.stop(), 0);

  // Missing directories are created, for root only.
  const std::string socket = dir / "a/b/tally.sock";
  TallydRun created({"--backend", "procfs", "--interval", "1", "--socket", socket});
  ASSERT_TRUE(created.wait_ready("control socket")) << created.process().stderr_text();
  for (const std::string& d : {dir / "a", dir / "a/b"}) {
    struct stat st {};
    ASSERT_EQ(::stat(d.c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 022, 0u) << d << " mode " << std::oct << (st.st_mode & 07777);
    EXPECT_EQ(st.st_uid, 0u);
  }
  auto status = run_tally(socket, {"status"}, 30s);
  EXPECT_NE(status.exit_code, 2) << status.err;
  EXPECT_EQ(created.stop(), 0);
}

}  // namespace
}  // namespace tally::test
