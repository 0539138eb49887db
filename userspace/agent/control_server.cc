#include "agent/control_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "tally/log.h"

namespace tally::agent {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

// Connections are told apart by the client's user id: the socket is only
// reachable by root and the socket's group, so a flood comes from a user.
std::string peer_of(stream::socket& socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return "uid ?";
  }
  return fmt::format("uid {}", cred.uid);
}

}  // namespace

// One client connection: reads request lines, answers each in order.
class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(ControlServer& server, stream::socket socket)
      : server_(server),
        table_(server.table_),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(control::kMaxRequestBytes) {}

  ~ControlSession() { table_->remove(id_); }

  void start(ConnectionTable::Id id) {
    id_ = id;
    do_read();
  }

  void close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

 private:
  // Every read and write has the deadline: a client that neither sends nor
  // reads holds its connection no longer than that.
  void arm_timer() {
    timer_.expires_after(ControlServer::kIdleTimeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->close();
    });
  }

  void do_read() {
    arm_timer();
    asio::async_read_until(socket_, buffer_, '\n',
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    timer_.cancel();
    if (server_.stopped_ || !socket_.is_open()) return;
    if (ec == asio::error::not_found) {
      refuse(fmt::format("request longer than {} bytes (one JSON object per line)",
                         control::kMaxRequestBytes));
      return;
    }
    if (ec == asio::error::eof && buffer_.size() > 0) {
      refuse("request ends without a newline (one JSON object per line)");
      return;
    }
    if (ec) {
      close();
      return;
    }
    const std::string line(asio::buffers_begin(buffer_.data()),
                           asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    buffer_.consume(n);
    auto request = control::parse_request(line);
    if (!request.ok()) {
      refuse(request.error().message());
      return;
    }
    table_->set_busy(id_, true);
    // Holds the session until the answer is written: a flush answers only
    // when the shippers are done.
    auto respond = [self = shared_from_this()](std::string response) {
      self->write_then_read(std::move(response));
    };
    try {
      server_.handler_(*request, respond);
    } catch (const std::exception& e) {
      // A bug on our side, not the client's: answer, log, keep serving.
      ++server_.handler_errors_;
      log::error("control socket: handling \"{}\" failed: {}", control::command_name(*request),
                 e.what());
      respond(control::make_error(fmt::format("tallyd failed handling \"{}\": {}",
                                              control::command_name(*request), e.what())));
    }
  }

  void refuse(const std::string& message) {
    ++server_.bad_requests_;
    table_->set_busy(id_, true);
    auto data = std::make_shared<std::string>(control::make_error(message));
    arm_timer();
    asio::async_write(
        socket_, asio::buffer(*data),
        [self = shared_from_this(), data](const boost::system::error_code&, std::size_t) {
          self->timer_.cancel();
          self->close();
        });
  }

  void write_then_read(std::string response) {
    if (!socket_.is_open()) return;  // closed while the answer was being made
    auto data = std::make_shared<std::string>(std::move(response));
    arm_timer();
    asio::async_write(
        socket_, asio::buffer(*data),
        [self = shared_from_this(), data](const boost::system::error_code& ec, std::size_t) {
          self->timer_.cancel();
          if (ec || self->server_.stopped_) {
            self->close();
            return;
          }
          self->table_->set_busy(self->id_, false);
          self->do_read();
        });
  }

  ControlServer& server_;
  std::shared_ptr<ConnectionTable> table_;
  stream::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf buffer_;
  ConnectionTable::Id id_ = 0;
};

ControlServer::ControlServer(asio::io_context& io, Handler handler)
    : handler_(std::move(handler)),
      acceptor_(io),
      accept_pause_(io),
      table_(std::make_shared<ConnectionTable>("control socket", kLimits)) {}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::listen(const std::string& path, const std::string& group) {
  gid_t gid = static_cast<gid_t>(-1);
  if (!group.empty()) {
    struct group* g = ::getgrnam(group.c_str());
    if (!g) return Error::format("control socket group \"{}\": no such group", group);
    gid = g->gr_gid;
  }
  if (auto st = prepare_socket_path(path); !st.ok()) return st;

  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  // The socket is created with the umask's mode: make it 0600 from birth so
  // there is no window in which others could connect.
  const mode_t old_umask = ::umask(0177);
  if (!ec) acceptor_.bind(stream::endpoint(path), ec);
  ::umask(old_umask);
  // A backlog well above the connection bound: a flood of connects queues
  // here instead of blocking an operator's `tally` in connect().
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error::format("listen on control socket {}: {}", path, ec.message());
  auto bound = identify_socket_file(path);
  if (!bound.ok()) return bound.error();
  bound_ = *bound;
  path_ = path;
  if (!group.empty()) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0 ||
        ::chmod(path.c_str(), 0660) != 0) {
      return errno_error(fmt::format("give control socket {} to group {}", path, group));
    }
  }
  do_accept();
  return ok_status();
}

void ControlServer::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void ControlServer::on_accept(const boost::system::error_code& ec, stream::socket socket) {
  if (stopped_ || !acceptor_.is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // The listener stays readable while accept fails: retrying at once
    // would spin. Closing an idle session frees a descriptor for the next.
    const auto pause = backoff_.failed(ec);
    if (out_of_descriptors(ec)) table_->close_oldest_idle();
    accept_pause_.expires_after(pause);
    accept_pause_.async_wait([this](const boost::system::error_code& wec) {
      if (!wec && !stopped_) do_accept();
    });
    return;
  }
  backoff_.succeeded();
  const std::string peer = peer_of(socket);
  auto session = std::make_shared<ControlSession>(*this, std::move(socket));
  std::weak_ptr<ControlSession> weak = session;
  const auto id = table_->admit(peer, [weak] {
    if (auto s = weak.lock()) s->close();
  });
  session->start(id);
  do_accept();
}

ControlServer::Counters ControlServer::counters() const {
  return Counters{table_->size(), table_->evicted(), backoff_.failures(), bad_requests_,
                  handler_errors_};
}

void ControlServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_pause_.cancel();
  table_->close_all();
  if (!path_.empty()) remove_socket_file(path_, bound_);
}

}  // namespace tally::agent
