#include "collector/connection_limiter.h"

#include <utility>

namespace tally::collector {

ConnectionLimiter::Slot::Slot(Slot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), client_(std::move(other.client_)) {}

ConnectionLimiter::Slot& ConnectionLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    client_ = std::move(other.client_);
  }
  return *this;
}

ConnectionLimiter::Slot::~Slot() { release(); }

void ConnectionLimiter::Slot::release() noexcept {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->release(client_);
}

ConnectionLimiter::ConnectionLimiter(std::size_t max_total, std::size_t max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

std::string ConnectionLimiter::client_of(const boost::asio::ip::address& peer) {
  if (peer.is_v4()) return peer.to_string();
  boost::asio::ip::address_v6 v6 = peer.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  boost::asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  for (std::size_t i = 8; i < bytes.size(); ++i) bytes[i] = 0;
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

ConnectionLimiter::Slot ConnectionLimiter::admit(const boost::asio::ip::address& peer,
                                                 Refusal& why) {
  why = Refusal::none;
  if (total_ >= max_total_) {
    why = Refusal::total;
    return {};
  }
  std::string client = client_of(peer);
  std::size_t& count = per_client_[client];
  if (count >= max_per_client_) {
    if (count == 0) per_client_.erase(client);
    why = Refusal::per_client;
    return {};
  }
  ++count;
  ++total_;
  return Slot(this, std::move(client));
}

std::size_t ConnectionLimiter::from(const boost::asio::ip::address& peer) const {
  auto it = per_client_.find(client_of(peer));
  return it == per_client_.end() ? 0 : it->second;
}

void ConnectionLimiter::release(const std::string& client) noexcept {
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  --total_;
}

}  // namespace tally::collector
