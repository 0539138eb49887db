#include "collector/ingest_budget.h"

#include <algorithm>
#include <utility>

namespace tally::collector {

IngestBudget::Ticket IngestBudget::admit(std::uint64_t bytes) {
  std::lock_guard lock(state_->mu);
  Usage& used = state_->used;
  const Limits& limits = state_->limits;
  if (used.requests >= limits.requests) return {};
  if (used.requests > 0 && bytes > limits.bytes - std::min(used.bytes, limits.bytes)) return {};
  ++used.requests;
  used.bytes += bytes;
  return Ticket(state_, bytes);
}

IngestBudget::Usage IngestBudget::usage() const {
  std::lock_guard lock(state_->mu);
  return state_->used;
}

bool IngestBudget::Ticket::resize(std::uint64_t bytes) {
  if (!state_) return false;
  std::lock_guard lock(state_->mu);
  Usage& used = state_->used;
  const std::uint64_t others = used.bytes - bytes_;
  if (bytes > bytes_ && used.requests > 1 &&
      bytes > state_->limits.bytes - std::min(others, state_->limits.bytes)) {
    return false;
  }
  used.bytes = others + bytes;
  bytes_ = bytes;
  return true;
}

void IngestBudget::Ticket::release() {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mu);
    state_->used.requests -= 1;
    state_->used.bytes -= bytes_;
  }
  state_.reset();
  bytes_ = 0;
}

IngestBudget::Ticket::~Ticket() { release(); }

IngestBudget::Ticket::Ticket(Ticket&& other) noexcept
    : state_(std::move(other.state_)), bytes_(std::exchange(other.bytes_, 0)) {}

IngestBudget::Ticket& IngestBudget::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

}  // namespace tally::collector
