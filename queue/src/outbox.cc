// Outbox: the thread-safe face of OutboxCore (see outbox.h for why one
// mutex around one connection).
#include "tally/queue/outbox.h"

#include "outbox_core.h"

namespace tally::queue {

Result<std::unique_ptr<Outbox>> Outbox::open(const OutboxOptions& options, std::uint64_t now_ns) {
  auto core = OutboxCore::open(options, now_ns);
  if (!core) return core.error();
  return std::unique_ptr<Outbox>(new Outbox(std::move(*core)));
}

Outbox::Outbox(std::unique_ptr<OutboxCore> core)
    : core_(std::move(core)), agent_id_(core_->agent_id()) {}

Outbox::~Outbox() = default;

Result<std::optional<std::string>> Outbox::dictionary_entry(std::uint64_t key) {
  std::lock_guard lock(mu_);
  return core_->dictionary_entry(key);
}

std::uint64_t Outbox::first_unused_dictionary_key() const {
  std::lock_guard lock(mu_);
  return core_->first_unused_dictionary_key();
}

Result<AppendResult> Outbox::append(std::span<const std::string> samples, std::uint64_t now_ns,
                                    const DictionaryUpdate& dictionary) {
  std::lock_guard lock(mu_);
  return core_->append(samples, now_ns, dictionary);
}

Result<int> Outbox::form_all(std::uint64_t now_ns) {
  std::lock_guard lock(mu_);
  return core_->form_all(now_ns);
}

Result<std::optional<Batch>> Outbox::next_ready(std::string_view sink) {
  std::lock_guard lock(mu_);
  return core_->next_ready(sink);
}

Status Outbox::ack(std::string_view sink, std::uint64_t seq) {
  std::lock_guard lock(mu_);
  return core_->ack(sink, seq);
}

Status Outbox::fail(std::string_view sink, std::uint64_t seq, std::string_view error) {
  std::lock_guard lock(mu_);
  return core_->fail(sink, seq, error);
}

Status Outbox::reject(std::string_view sink, std::uint64_t seq, int http_status,
                      std::string_view message, std::uint64_t now_ns, std::string_view readable) {
  std::lock_guard lock(mu_);
  return core_->reject(sink, seq, http_status, message, now_ns, readable);
}

Status Outbox::reject_samples(std::string_view sink, std::uint64_t seq, std::uint32_t first_index,
                              std::uint32_t count, int http_status, std::string_view message,
                              std::uint64_t now_ns, std::string_view readable) {
  std::lock_guard lock(mu_);
  return core_->reject_samples(sink, seq, first_index, count, http_status, message, now_ns,
                               readable);
}

Result<bool> Outbox::check_file(std::uint64_t now_ns) {
  std::lock_guard lock(mu_);
  return core_->check_file(now_ns);
}

Result<OutboxStats> Outbox::stats(std::uint64_t now_ns) {
  std::lock_guard lock(mu_);
  return core_->stats(now_ns);
}

const std::filesystem::path& Outbox::path() const { return core_->path(); }

void Outbox::fail_next_commit_for_testing(int sqlite_rc) {
  std::lock_guard lock(mu_);
  core_->db().fail_next_commit(sqlite_rc);
}

}  // namespace tally::queue
