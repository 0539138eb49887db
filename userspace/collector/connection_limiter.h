// How many connections tally-collector holds at once, in total and per
// client: a client (or a few) opening thousands of idle connections must not
// take the collector's file descriptors, and with them everyone else's
// /healthz and batches.
//
// A "client" is an IPv4 address, or an IPv6 /64: one host on IPv6 usually
// holds a whole /64, so counting single IPv6 addresses would cap nothing.
// IPv4-mapped IPv6 addresses count as the IPv4 address.
//
// Not thread-safe: the io thread admits and releases.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace tally::collector {

class ConnectionLimiter {
 public:
  // Releases its connection when destroyed. Must not outlive the limiter.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

    bool held() const { return limiter_ != nullptr; }

   private:
    friend class ConnectionLimiter;
    Slot(ConnectionLimiter* limiter, std::string client) noexcept
        : limiter_(limiter), client_(std::move(client)) {}
    void release() noexcept;

    ConnectionLimiter* limiter_ = nullptr;
    std::string client_;
  };

  enum class Refusal { none, total, per_client };

  ConnectionLimiter(std::size_t max_total, std::size_t max_per_client);

  // A held Slot for a connection from `peer`, or an empty one when a cap is
  // reached; `why` then says which.
  Slot admit(const boost::asio::ip::address& peer, Refusal& why);

  std::size_t total() const { return total_; }
  std::size_t from(const boost::asio::ip::address& peer) const;
  std::size_t max_total() const { return max_total_; }
  std::size_t max_per_client() const { return max_per_client_; }

  // "192.0.2.7" or "2001:db8:1:2::/64": the client a peer counts against.
  static std::string client_of(const boost::asio::ip::address& peer);

 private:
  void release(const std::string& client) noexcept;

  std::size_t max_total_;
  std::size_t max_per_client_;
  std::size_t total_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;
};

}  // namespace tally::collector
