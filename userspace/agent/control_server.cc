#include "control_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "tally/fd.h"
#include "tally/log.h"

namespace tally::agent {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {
constexpr auto kIdleTimeout = std::chrono::seconds(30);

// True if something accepts connections at path (a running tallyd).
bool socket_is_live(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::copy(path.begin(), path.end(), addr.sun_path);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}
}  // namespace

// One client connection: reads request lines, answers each in order.
class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(ControlServer& server, stream::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()),
        buffer_(control::kMaxMessageBytes) {}

  void start() {
    do_read();
  }

  void close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

 private:
  void do_read() {
    timer_.expires_after(kIdleTimeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->finish();  // idle too long
    });
    asio::async_read_until(socket_, buffer_, '\n',
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    timer_.cancel();
    if (ec || server_.stopped_) {
      if (ec == asio::error::not_found) write_and_close(control::make_error("request too large"));
      else finish();
      return;
    }
    std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    buffer_.consume(n);
    auto request = control::parse_request(line);
    if (!request.ok()) {
      write_and_close(control::make_error(request.error().message()));
      return;
    }
    std::weak_ptr<ControlSession> weak = shared_from_this();
    server_.handler_(*request, [weak](std::string response) {
      if (auto self = weak.lock()) self->write_then_read(std::move(response));
    });
  }

  void write_then_read(std::string response) {
    auto data = std::make_shared<std::string>(std::move(response));
    asio::async_write(socket_, asio::buffer(*data),
                      [self = shared_from_this(), data](const boost::system::error_code& ec,
                                                        std::size_t) {
                        if (ec) self->finish();
                        else self->do_read();
                      });
  }

  void write_and_close(std::string response) {
    auto data = std::make_shared<std::string>(std::move(response));
    asio::async_write(socket_, asio::buffer(*data),
                      [self = shared_from_this(), data](const boost::system::error_code&,
                                                        std::size_t) { self->finish(); });
  }

  void finish() {
    close();
    server_.sessions_.erase(shared_from_this());
  }

  ControlServer& server_;
  stream::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf buffer_;
};

ControlServer::ControlServer(asio::io_context& io, Handler handler)
    : io_(io), handler_(std::move(handler)), acceptor_(io) {}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::listen(const std::string& path, const std::string& group) {
  std::error_code fs_ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, fs_ec)) {
    std::filesystem::create_directories(parent, fs_ec);
    if (fs_ec) return Error::format("create control socket directory {}: {}", parent.string(), fs_ec.message());
    ::chmod(parent.c_str(), 0755);
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (!group.empty()) {
    struct group* g = ::getgrnam(group.c_str());
    if (!g) return Error::format("control socket group \"{}\": no such group", group);
    gid = g->gr_gid;
  }
  if (socket_is_live(path)) {
    return Error::format("control socket {} is in use: another tallyd is running (stop it, or "
                         "give this one --socket)", path);
  }
  ::unlink(path.c_str());  // stale socket of a tallyd that died

  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  // The socket is created with the umask's mode: make it 0600 from birth so
  // there is no window in which others could connect.
  const mode_t old_umask = ::umask(0177);
  if (!ec) acceptor_.bind(stream::endpoint(path), ec);
  ::umask(old_umask);
  if (!ec) acceptor_.listen(16, ec);
  if (ec) return Error::format("listen on control socket {}: {}", path, ec.message());
  if (!group.empty()) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0 || ::chmod(path.c_str(), 0660) != 0) {
      return errno_error(fmt::format("give control socket {} to group {}", path, group));
    }
  }
  path_ = path;
  do_accept();
  return ok_status();
}

void ControlServer::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (stopped_ || !acceptor_.is_open()) return;
    if (!ec) {
      auto session = std::make_shared<ControlSession>(*this, std::move(socket));
      sessions_.insert(session);
      session->start();
    }
    do_accept();
  });
}

void ControlServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  auto sessions = sessions_;
  for (auto& s : sessions) s->close();
  sessions_.clear();
  if (!path_.empty()) ::unlink(path_.c_str());
}

}  // namespace tally::agent
