// Appends and acks in a loop until killed, logging each success after the
// call returned. Used by OutboxCrash.*: outbox_crash_child <db> <run> <seed>.
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "crash_protocol.h"
#include "tally/queue/outbox.h"
#include "tally/time_util.h"

namespace {

void emit(const std::string& line) {
  // One write per line: the parent never sees half a line, and a line is
  // only there if the call before it returned success.
  if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::_Exit(3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tally::queue;
  if (argc != 4) return 2;
  const std::uint64_t run = std::strtoull(argv[2], nullptr, 10);
  std::mt19937_64 rng(std::strtoull(argv[3], nullptr, 10));

  OutboxOptions options;
  options.path = argv[1];
  options.sinks = {"collector"};
  options.batch.max_samples = testing::kCrashMaxSamplesPerBatch;
  auto outbox = Outbox::open(options, tally::realtime_ns());
  if (!outbox) return 4;

  for (std::uint64_t append = 0;; ++append) {
    const std::size_t count = 1 + rng() % 20;
    std::vector<std::string> samples;
    for (std::size_t i = 0; i < count; ++i)
      samples.push_back(testing::crash_sample(run, append, i));
    auto r = (*outbox)->append(samples, tally::realtime_ns());
    if (!r) return 5;
    emit(fmt::format("A {} {} {} {} {}\n", r->first_seq, r->last_seq, run, append, count));

    for (int k = rng() % 4; k > 0; --k) {
      auto head = (*outbox)->next_ready("collector");
      if (!head) return 6;
      if (!head->has_value()) break;
      if (!(*outbox)->ack("collector", (*head)->seq)) return 7;
      emit(fmt::format("K {}\n", (*head)->seq));
    }
  }
}
