#include "collector/batch_parser.h"

#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "collector/json_field.h"
#include "collector/sample_builder.h"

namespace tally::collector {

namespace {

using Type = JsonValue::Type;

// A fixed set of field names and what the body said for each.
template <std::size_t N>
class FieldTable {
 public:
  explicit constexpr FieldTable(std::array<std::string_view, N> names) : names_(names) {}

  int find(std::string_view k) const {
    for (std::size_t i = 0; i < N; ++i) {
      if (names_[i] == k) return static_cast<int>(i);
    }
    return -1;
  }
  // False when the field was already set: a duplicate key.
  bool set(int i, const JsonValue& v) {
    if (seen_[i]) return false;
    values_[i] = v;
    seen_[i] = true;
    return true;
  }
  const JsonValue* get(int i) const { return seen_[i] ? &values_[i] : nullptr; }
  std::string_view name(int i) const { return names_[i]; }

 private:
  std::array<std::string_view, N> names_;
  std::array<JsonValue, N> values_{};
  std::array<bool, N> seen_{};
};

enum TopField {
  kVersion,
  kAgentId,
  kHost,
  kSeq,
  kKind,
  kFirstIndex,
  kBatchSamples,
  kSamples,
  kGap
};
enum GapField { kFirstSeq, kLastSeq, kGapSamples, kReason, kTimeNs, kDetail, kPredecessor };
enum PredecessorField { kPredecessorAgentId, kPredecessorLastSeq };

// What each open container is, innermost last.
enum class Scope {
  root,          // the body object
  samples,       // the "samples" array
  sample,        // one sample object
  sample_inner,  // a container inside a sample
  gap,           // the "gap" object
  predecessor,   // the gap's "predecessor" object
  skip,          // an unknown field's value, or anything after an error
};

// nlohmann::json SAX handler (nlohmann/detail/input/json_sax.hpp) that
// routes each event by the scope it occurs in.
class BatchSax {
 public:
  bool null() { return scalar(JsonValue{Type::null}, {}); }
  bool boolean(bool b) {
    JsonValue v{Type::boolean};
    v.boolean = b;
    return scalar(std::move(v), {});
  }
  bool number_integer(std::int64_t i) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, i);
    JsonValue v{Type::negative_integer};
    v.number = static_cast<std::uint64_t>(i);
    return scalar(std::move(v), std::string_view(buf, r.ptr - buf));
  }
  bool number_unsigned(std::uint64_t u) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, u);
    JsonValue v{Type::unsigned_integer};
    v.number = u;
    return scalar(std::move(v), std::string_view(buf, r.ptr - buf));
  }
  // `text` is the number as spelled in the body, which is what gets stored.
  bool number_float(double /*value*/, const std::string& text) {
    return scalar(JsonValue{Type::fractional}, text);
  }
  bool string(std::string& s) {
    JsonValue v{Type::string};
    v.text = std::move(s);
    return scalar(std::move(v), {});
  }
  bool binary(nlohmann::json::binary_t& /*unused*/) { return false; }  // not produced by JSON
  bool start_object(std::size_t /*unknown*/) { return open(false); }
  bool start_array(std::size_t /*unknown*/) { return open(true); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k);
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex);

  Result<BatchRequest> result();

 private:
  bool scalar(JsonValue v, std::string_view number_text);
  bool open(bool is_array);
  bool close();
  void fail(std::string message) {
    if (!error_) error_ = std::move(message);
  }
  // A problem that stops parsing; reported before anything else.
  void fatal(std::string message) { fatal_ = std::move(message); }
  std::string sample_path() const {
    return fmt::format("samples[{}]", samples_.size() + rejected_);
  }
  Result<BatchRequest> finish_samples(BatchRequest req);
  Result<BatchRequest> finish_gap(BatchRequest req);
  Result<std::optional<Predecessor>> finish_predecessor(const BatchRequest& req,
                                                        const GapRecord& g);

  std::vector<Scope> scopes_;
  FieldTable<9> top_{{"version", "agent_id", "host", "seq", "kind", "first_index", "batch_samples",
                      "samples", "gap"}};
  FieldTable<7> gap_{
      {"first_seq", "last_seq", "samples", "reason", "time_ns", "detail", "predecessor"}};
  FieldTable<2> predecessor_{{"agent_id", "last_seq"}};
  int top_key_ = -1;          // known field of the last key in the body object
  int gap_key_ = -1;          // known field of the last key in the gap object
  int predecessor_key_ = -1;  // known field of the last key in the predecessor object
  SampleBuilder builder_;
  std::vector<StoredSample> samples_;
  std::size_t rejected_ = 0;               // samples seen after an error, not kept
  std::optional<std::string> error_;       // first schema problem
  std::optional<std::string> json_error_;  // malformed JSON
  std::optional<std::string> fatal_;       // not an object, nested too deep
};

JsonValue container(bool is_array) { return JsonValue{is_array ? Type::array : Type::object}; }

bool BatchSax::key(std::string& k) {
  switch (scopes_.back()) {
    case Scope::root:
      top_key_ = top_.find(k);
      break;
    case Scope::gap:
      gap_key_ = gap_.find(k);
      break;
    case Scope::predecessor:
      predecessor_key_ = predecessor_.find(k);
      break;
    case Scope::sample:
    case Scope::sample_inner:
      builder_.key(k);
      break;
    default:
      break;
  }
  return true;
}

bool BatchSax::scalar(JsonValue v, std::string_view number_text) {
  if (scopes_.empty()) {
    fatal(fmt::format("body: expected a JSON object, got {}", json_type_name(v.type)));
    return false;
  }
  switch (scopes_.back()) {
    case Scope::root:
      if (top_key_ >= 0 && !top_.set(top_key_, v)) {
        fail(fmt::format("{}: duplicate key", top_.name(top_key_)));
      }
      break;
    case Scope::gap:
      if (gap_key_ >= 0 && !gap_.set(gap_key_, v)) {
        fail(fmt::format("gap.{}: duplicate key", gap_.name(gap_key_)));
      }
      break;
    case Scope::predecessor:
      if (predecessor_key_ >= 0 && !predecessor_.set(predecessor_key_, v)) {
        fail(fmt::format("gap.predecessor.{}: duplicate key", predecessor_.name(predecessor_key_)));
      }
      break;
    case Scope::samples:
      fail(fmt::format("{}: expected object, got {}", sample_path(), json_type_name(v.type)));
      ++rejected_;
      break;
    case Scope::sample:
    case Scope::sample_inner:
      builder_.scalar(std::move(v), number_text);
      break;
    case Scope::skip:
      break;
  }
  return true;
}

bool BatchSax::open(bool is_array) {
  if (scopes_.size() >= kMaxJsonDepth) {
    fatal(fmt::format("body: nesting deeper than {} levels", kMaxJsonDepth));
    return false;
  }
  if (scopes_.empty()) {
    if (is_array) {
      fatal("body: expected a JSON object, got array");
      return false;
    }
    scopes_.push_back(Scope::root);
    return true;
  }
  Scope next = Scope::skip;
  switch (scopes_.back()) {
    case Scope::root: {
      if (top_key_ < 0) break;  // unknown field: skipped
      if (!top_.set(top_key_, container(is_array))) {
        fail(fmt::format("{}: duplicate key", top_.name(top_key_)));
      } else if (top_key_ == kSamples && is_array && !error_) {
        next = Scope::samples;
      } else if (top_key_ == kGap && !is_array && !error_) {
        next = Scope::gap;
      }
      // Any other known field holding a container is reported by result().
      break;
    }
    case Scope::gap:
      if (gap_key_ < 0) break;  // unknown field: skipped
      if (!gap_.set(gap_key_, container(is_array))) {
        fail(fmt::format("gap.{}: duplicate key", gap_.name(gap_key_)));
      } else if (gap_key_ == kPredecessor && !is_array && !error_) {
        next = Scope::predecessor;
      }
      break;
    case Scope::predecessor:
      if (predecessor_key_ >= 0 && !predecessor_.set(predecessor_key_, container(is_array))) {
        fail(fmt::format("gap.predecessor.{}: duplicate key", predecessor_.name(predecessor_key_)));
      }
      break;
    case Scope::samples:
      if (error_) {
        ++rejected_;
      } else if (is_array) {
        fail(sample_path() + ": expected object, got array");
        ++rejected_;
      } else {
        builder_.begin();
        next = Scope::sample;
      }
      break;
    case Scope::sample:
    case Scope::sample_inner:
      builder_.open(is_array);
      next = Scope::sample_inner;
      break;
    case Scope::skip:
      break;
  }
  scopes_.push_back(next);
  return true;
}

bool BatchSax::close() {
  Scope closing = scopes_.back();
  scopes_.pop_back();
  if (closing == Scope::sample_inner) {
    builder_.close();
  } else if (closing == Scope::sample) {
    std::size_t position = samples_.size() + rejected_;
    auto sample = builder_.finish(position);
    if (sample.ok()) {
      samples_.push_back(std::move(sample).value());
    } else {
      fail(fmt::format("samples[{}].{}", position, sample.error().message()));
      ++rejected_;
    }
  }
  return true;
}

bool BatchSax::parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                           const nlohmann::detail::exception& ex) {
  // what() is "[json.exception.parse_error.101] parse error at line 1, ...":
  // the bracketed id means nothing to a client.
  std::string_view what = ex.what();
  if (auto close_bracket = what.find("] "); what.starts_with("[") && close_bracket != what.npos) {
    what.remove_prefix(close_bracket + 2);
  }
  json_error_ = fmt::format("invalid JSON: {}", what);
  return false;
}

Result<BatchRequest> BatchSax::result() {
  if (json_error_) return Error(*json_error_);
  if (fatal_) return Error(*fatal_);
  if (auto problem = check_field(top_.get(kVersion), FieldType::u64)) {
    return Error::format("version: {}", *problem);
  }
  const std::uint64_t version = top_.get(kVersion)->number;
  if (version < kMinProtocolVersion || version > kProtocolVersion) {
    return Error::format("version: unsupported version {} (this collector speaks {} to {})",
                         version, kMinProtocolVersion, kProtocolVersion);
  }
  if (error_) return Error(*error_);

  struct Check {
    int field;
    FieldType type;
  };
  for (Check c : {Check{kAgentId, FieldType::string}, Check{kHost, FieldType::string},
                  Check{kSeq, FieldType::i64max}, Check{kKind, FieldType::string}}) {
    if (auto problem = check_field(top_.get(c.field), c.type)) {
      return Error::format("{}: {}", top_.name(c.field), *problem);
    }
  }
  BatchRequest req;
  req.agent_id = top_.get(kAgentId)->text;
  req.host = top_.get(kHost)->text;
  req.seq = top_.get(kSeq)->number;
  if (req.agent_id.empty()) return Error("agent_id: must not be empty");
  if (req.agent_id.size() > kMaxAgentIdBytes) {
    return Error::format("agent_id: longer than {} bytes", kMaxAgentIdBytes);
  }
  if (req.seq == 0) return Error("seq: must be at least 1");

  const std::string& kind = top_.get(kKind)->text;
  if (kind == "samples") return finish_samples(std::move(req));
  if (kind == "gap") return finish_gap(std::move(req));
  std::string shown = kind.size() > 64 ? kind.substr(0, 64) + "..." : kind;
  return Error::format(R"(kind: unknown kind "{}" (expected "samples" or "gap"))", shown);
}

Result<BatchRequest> BatchSax::finish_samples(BatchRequest req) {
  for (int f : {kFirstIndex, kBatchSamples}) {
    if (auto problem = check_field(top_.get(f), FieldType::i64max)) {
      return Error::format("{}: {}", top_.name(f), *problem);
    }
  }
  const JsonValue* samples = top_.get(kSamples);
  if (samples == nullptr) return Error("samples: missing");
  if (samples->type != Type::array) {
    return Error::format("samples: expected array, got {}", json_type_name(samples->type));
  }
  SamplesPiece piece;
  piece.first_index = top_.get(kFirstIndex)->number;
  piece.batch_samples = top_.get(kBatchSamples)->number;
  // Both are at most 2^63-1, so the sum cannot wrap.
  if (piece.first_index + samples_.size() > piece.batch_samples) {
    return Error::format("samples: piece holds indexes {} to {} but batch_samples is {}",
                         piece.first_index, piece.first_index + samples_.size() - 1,
                         piece.batch_samples);
  }
  if (top_.get(kVersion)->number < 2) {
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      if (samples_[i].refers_to_names()) {
        return Error::format(
            "samples[{}].comm: missing (leaving out a process's names needs "
            "protocol version 2)",
            i);
      }
    }
  }
  if (top_.get(kVersion)->number < 3) {
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      if (samples_[i].is_cgroup) {
        return Error::format("samples[{}].kind: cgroup lines need protocol version 3", i);
      }
    }
  }
  for (StoredSample& s : samples_) s.index += piece.first_index;
  piece.samples = std::move(samples_);
  req.body = std::move(piece);
  return req;
}

Result<BatchRequest> BatchSax::finish_gap(BatchRequest req) {
  const JsonValue* gap = top_.get(kGap);
  if (gap == nullptr) return Error("gap: missing");
  if (gap->type != Type::object) {
    return Error::format("gap: expected object, got {}", json_type_name(gap->type));
  }
  struct Check {
    int field;
    FieldType type;
  };
  for (Check c : {Check{kFirstSeq, FieldType::i64max}, Check{kLastSeq, FieldType::i64max},
                  Check{kGapSamples, FieldType::i64max}, Check{kReason, FieldType::string},
                  Check{kTimeNs, FieldType::i64max}}) {
    if (auto problem = check_field(gap_.get(c.field), c.type)) {
      return Error::format("gap.{}: {}", gap_.name(c.field), *problem);
    }
  }
  const JsonValue* detail = gap_.get(kDetail);
  if (detail != nullptr) {
    if (auto problem = check_field(detail, FieldType::string)) {
      return Error::format("gap.detail: {}", *problem);
    }
  }
  GapRecord g;
  g.first_seq = gap_.get(kFirstSeq)->number;
  g.last_seq = gap_.get(kLastSeq)->number;
  g.samples = gap_.get(kGapSamples)->number;
  g.reason = gap_.get(kReason)->text;
  g.time_ns = gap_.get(kTimeNs)->number;
  if (detail != nullptr) g.detail = detail->text;
  if ((g.first_seq == 0) != (g.last_seq == 0)) {
    return Error(
        "gap: first_seq and last_seq must both be 0 (samples lost before getting a "
        "seq) or both be at least 1");
  }
  if (g.first_seq > g.last_seq) {
    return Error::format("gap: first_seq {} is after last_seq {}", g.first_seq, g.last_seq);
  }
  auto predecessor = finish_predecessor(req, g);
  if (!predecessor.ok()) return predecessor.error();
  g.predecessor = std::move(predecessor).value();
  req.body = std::move(g);
  return req;
}

// Optional: absent is no predecessor; anything else must be a valid one.
Result<std::optional<Predecessor>> BatchSax::finish_predecessor(const BatchRequest& req,
                                                                const GapRecord& g) {
  const JsonValue* value = gap_.get(kPredecessor);
  if (value == nullptr) return std::optional<Predecessor>();
  if (value->type != Type::object) {
    return Error::format("gap.predecessor: expected object, got {}", json_type_name(value->type));
  }
  if (auto problem = check_field(predecessor_.get(kPredecessorAgentId), FieldType::string)) {
    return Error::format("gap.predecessor.agent_id: {}", *problem);
  }
  if (auto problem = check_field(predecessor_.get(kPredecessorLastSeq), FieldType::i64max)) {
    return Error::format("gap.predecessor.last_seq: {}", *problem);
  }
  Predecessor p;
  p.agent_id = predecessor_.get(kPredecessorAgentId)->text;
  p.last_seq = predecessor_.get(kPredecessorLastSeq)->number;
  if (p.agent_id.empty()) return Error("gap.predecessor.agent_id: must not be empty");
  if (p.agent_id.size() > kMaxAgentIdBytes) {
    return Error::format("gap.predecessor.agent_id: longer than {} bytes", kMaxAgentIdBytes);
  }
  if (p.agent_id == req.agent_id) {
    return Error("gap.predecessor.agent_id: names this agent itself");
  }
  // The seqs declared lost are the predecessor's; this agent's own range
  // would say something else at the same time.
  if (g.first_seq != 0) {
    return Error(
        "gap.predecessor: first_seq and last_seq must be 0 (the seqs declared lost are the "
        "predecessor's, up to predecessor.last_seq)");
  }
  return std::optional<Predecessor>(std::move(p));
}

}  // namespace

Result<BatchRequest> parse_batch(std::istream& in) {
  BatchSax sax;
  nlohmann::json::sax_parse(in, &sax);
  return sax.result();
}

Result<BatchRequest> parse_batch(std::string_view text) {
  BatchSax sax;
  nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
  return sax.result();
}

}  // namespace tally::collector
