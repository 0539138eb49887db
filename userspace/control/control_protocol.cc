#include "control/control_protocol.h"

#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "tally/utf8.h"

namespace tally::control {

namespace {

using Json = nlohmann::json;

std::string dump_line(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// What one request field held. Only scalars keep a value: nested values
// are refused wherever a field is used, so only their kind matters.
struct FieldValue {
  enum class Type { absent, null, boolean, integer, fraction, string, array, object };
  Type type = Type::absent;
  int occurrences = 0;
  bool boolean = false;
  bool above_int64 = false;  // an integer past INT64_MAX, kept in `big`
  std::int64_t integer = 0;
  std::uint64_t big = 0;
  std::string text;  // a string's value, or a fraction's literal
};

// The fields any command reads; everything else in a request is skipped.
enum Field : std::size_t { kVersion, kCommand, kN, kTimeoutS, kBy, kSort, kFieldCount };
constexpr std::array<std::string_view, kFieldCount> kFieldNames{"version",   "command", "n",
                                                                "timeout_s", "by",      "sort"};

// Reads a request with nlohmann's SAX parser, keeping only the top-level
// members named in kFieldNames: memory stays bounded by the line, and
// nesting is refused past kMaxRequestDepth before anything is built.
class RequestReader final : public Json::json_sax_t {
 public:
  // The problem, if the text is not a JSON object within the limits.
  const std::string& problem() const { return problem_; }
  const FieldValue& field(Field f) const { return fields_[f]; }

  bool null() override { return scalar(FieldValue::Type::null); }
  bool boolean(bool v) override {
    if (FieldValue* f = member(FieldValue::Type::boolean)) f->boolean = v;
    return ok();
  }
  bool number_integer(number_integer_t v) override {
    if (FieldValue* f = member(FieldValue::Type::integer)) f->integer = v;
    return ok();
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (FieldValue* f = member(FieldValue::Type::integer)) {
      f->above_int64 = v > static_cast<std::uint64_t>(INT64_MAX);
      f->big = v;
      f->integer = f->above_int64 ? 0 : static_cast<std::int64_t>(v);
    }
    return ok();
  }
  bool number_float(number_float_t, const string_t& literal) override {
    if (FieldValue* f = member(FieldValue::Type::fraction)) f->text = literal;
    return ok();
  }
  bool string(string_t& v) override {
    if (FieldValue* f = member(FieldValue::Type::string)) f->text = std::move(v);
    return ok();
  }
  bool binary(binary_t&) override { return scalar(FieldValue::Type::string); }
  bool start_object(std::size_t) override {
    if (depth_ > 0) member(FieldValue::Type::object);
    return nest();
  }
  bool key(string_t& name) override {
    if (depth_ != 1) return ok();
    current_ = kFieldCount;
    for (std::size_t i = 0; i < kFieldCount; ++i) {
      if (name == kFieldNames[i]) current_ = static_cast<Field>(i);
    }
    return ok();
  }
  bool end_object() override { return unnest(); }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return fail("request is a JSON array, not an object");
    member(FieldValue::Type::array);
    return nest();
  }
  bool end_array() override { return unnest(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    if (problem_.empty()) {
      problem_ = fmt::format("request is not valid JSON (error at byte {})", position);
    }
    return false;
  }

 private:
  // The field a value at the current position belongs to, if it is one of
  // ours at the top level; records its type and counts it.
  FieldValue* member(FieldValue::Type type) {
    if (depth_ == 0) {
      fail("request is not a JSON object");
      return nullptr;
    }
    if (depth_ != 1 || current_ == kFieldCount) return nullptr;
    FieldValue& f = fields_[current_];
    const int occurrences = f.occurrences + 1;
    f = FieldValue();
    f.type = type;
    f.occurrences = occurrences;
    return &f;
  }
  bool scalar(FieldValue::Type type) {
    member(type);
    return ok();
  }
  bool nest() {
    if (++depth_ > kMaxRequestDepth) {
      return fail(fmt::format("request is nested deeper than {} levels", kMaxRequestDepth));
    }
    return ok();
  }
  bool unnest() {
    --depth_;
    return ok();
  }
  bool fail(std::string problem) {
    if (problem_.empty()) problem_ = std::move(problem);
    return false;
  }
  bool ok() const { return problem_.empty(); }

  std::array<FieldValue, kFieldCount> fields_{};
  Field current_ = kFieldCount;
  int depth_ = 0;
  std::string problem_;
};

// What a refused field held, for the error: its JSON type, or the number.
std::string describe(const FieldValue& v) {
  switch (v.type) {
    case FieldValue::Type::absent:
      return "nothing";
    case FieldValue::Type::null:
      return "null";
    case FieldValue::Type::boolean:
      return v.boolean ? "true" : "false";
    case FieldValue::Type::integer:
      return v.above_int64 ? fmt::format("{}", v.big) : fmt::format("{}", v.integer);
    case FieldValue::Type::fraction:
      // The literal, so 10.0 reads as given; cut, since it may be long.
      return v.text.size() <= 24 ? v.text : v.text.substr(0, 24) + "...";
    case FieldValue::Type::string:
      return "a string";
    case FieldValue::Type::array:
      return "an array";
    case FieldValue::Type::object:
      return "an object";
  }
  return "something else";
}

Status given_once(const FieldValue& v, std::string_view name) {
  if (v.occurrences > 1) return Error::format("field \"{}\" is given more than once", name);
  return ok_status();
}

Result<int> whole_number(const FieldValue& v, const WholeNumberField& rule) {
  if (auto once = given_once(v, rule.name); !once.ok()) return once.error();
  if (v.type == FieldValue::Type::absent) return rule.fallback;
  if (v.type == FieldValue::Type::integer && !v.above_int64 && v.integer >= rule.min &&
      v.integer <= rule.max) {
    return static_cast<int>(v.integer);
  }
  return Error::format("field \"{}\" must be a whole number from {} to {}; got {}", rule.name,
                       rule.min, rule.max, describe(v));
}

constexpr const char* kCommands = "status, top, flush";

Status check_version(const FieldValue& v) {
  if (auto once = given_once(v, "version"); !once.ok()) return once;
  if (v.type == FieldValue::Type::absent) {
    return Error::format("request has no \"version\" (this tallyd speaks {})", kProtocolVersion);
  }
  if (v.type != FieldValue::Type::integer) {
    return Error::format("field \"version\" must be the whole number {}; got {}", kProtocolVersion,
                         describe(v));
  }
  if (v.above_int64 || v.integer != kProtocolVersion) {
    return Error::format("protocol version {} not supported (this tallyd speaks {})", describe(v),
                         kProtocolVersion);
  }
  return ok_status();
}

// The peer's text, cut for an error message, never inside a UTF-8 sequence.
std::string shown_text(const std::string& name) {
  const std::size_t keep = utf8_cut_length(name, 32);
  return keep == name.size() ? name : name.substr(0, keep) + "...";
}

Result<TopGrouping> top_grouping(const FieldValue& v) {
  if (auto once = given_once(v, "by"); !once.ok()) return once.error();
  if (v.type == FieldValue::Type::absent) return TopGrouping::process;
  if (v.type == FieldValue::Type::string) {
    if (auto g = parse_top_grouping(v.text)) return *g;
  }
  return Error::format(
      "field \"by\" must be one of {}; got {}", kTopGroupings,
      v.type == FieldValue::Type::string ? fmt::format("\"{}\"", shown_text(v.text)) : describe(v));
}

Result<TopSort> top_sort(const FieldValue& v) {
  if (auto once = given_once(v, "sort"); !once.ok()) return once.error();
  if (v.type == FieldValue::Type::absent) return TopSort::cpu;
  if (v.type == FieldValue::Type::string) {
    if (auto s = parse_top_sort(v.text)) return *s;
  }
  return Error::format(
      "field \"sort\" must be one of {}; got {}", kTopSorts,
      v.type == FieldValue::Type::string ? fmt::format("\"{}\"", shown_text(v.text)) : describe(v));
}

}  // namespace

std::optional<TopSort> parse_top_sort(std::string_view name) {
  for (TopSort s : {TopSort::cpu, TopSort::rss, TopSort::pid, TopSort::wait, TopSort::container}) {
    if (name == top_sort_name(s)) return s;
  }
  return std::nullopt;
}

std::string_view top_sort_name(TopSort sort) {
  switch (sort) {
    case TopSort::cpu:
      return "cpu";
    case TopSort::rss:
      return "rss";
    case TopSort::pid:
      return "pid";
    case TopSort::wait:
      return "wait";
    case TopSort::container:
      return "container";
  }
  return "cpu";
}

std::optional<TopGrouping> parse_top_grouping(std::string_view name) {
  if (name == "process") return TopGrouping::process;
  if (name == "cgroup") return TopGrouping::cgroup;
  if (name == "container") return TopGrouping::container;
  if (name == "pod") return TopGrouping::pod;
  return std::nullopt;
}

std::string_view command_name(const Request& request) {
  struct Name {
    std::string_view operator()(const StatusRequest&) const { return "status"; }
    std::string_view operator()(const TopRequest&) const { return "top"; }
    std::string_view operator()(const FlushRequest&) const { return "flush"; }
  };
  return std::visit(Name{}, request);
}

std::string make_request(std::string_view command, nlohmann::json args) {
  args["version"] = kProtocolVersion;
  args["command"] = command;
  return dump_line(args);
}

Result<Request> parse_request(std::string_view line) {
  RequestReader reader;
  Json::sax_parse(line, &reader);
  if (!reader.problem().empty()) return Error(reader.problem());
  if (auto version = check_version(reader.field(kVersion)); !version.ok()) return version.error();
  const FieldValue& command = reader.field(kCommand);
  if (auto once = given_once(command, "command"); !once.ok()) return once.error();
  if (command.type == FieldValue::Type::absent) {
    return Error::format("request has no \"command\" (accepted: {})", kCommands);
  }
  if (command.type != FieldValue::Type::string) {
    return Error::format("field \"command\" must be a string, one of {}; got {}", kCommands,
                         describe(command));
  }
  if (command.text == "status") return Request(StatusRequest{});
  if (command.text == "top") {
    auto n = whole_number(reader.field(kN), kTopN);
    if (!n.ok()) return n.error();
    auto by = top_grouping(reader.field(kBy));
    if (!by.ok()) return by.error();
    auto sort = top_sort(reader.field(kSort));
    if (!sort.ok()) return sort.error();
    return Request(TopRequest{*n, *by, *sort});
  }
  if (command.text == "flush") {
    auto timeout = whole_number(reader.field(kTimeoutS), kFlushTimeout);
    if (!timeout.ok()) return timeout.error();
    return Request(FlushRequest{*timeout});
  }
  return Error::format("unknown command \"{}\" (accepted: {})", shown_text(command.text),
                       kCommands);
}

std::string make_ok(const nlohmann::json& result) {
  return dump_line({{"version", kProtocolVersion}, {"ok", true}, {"result", result}});
}

std::string make_error(std::string_view message) {
  return dump_line({{"version", kProtocolVersion}, {"ok", false}, {"error", message}});
}

Result<nlohmann::json> parse_response(std::string_view line) {
  auto j = Json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error("tallyd sent a response that is not a JSON object");
  const auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() ||
      version->get<std::int64_t>() != kProtocolVersion) {
    const std::string theirs =
        version == j.end() ? "no version"
        : version->is_number_integer()
            ? fmt::format("control protocol {}", version->get<std::int64_t>())
            : "an unreadable version";
    return Error::format("tallyd speaks {}, this tally speaks control protocol {}", theirs,
                         kProtocolVersion);
  }
  const auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return Error("tallyd sent a response without \"ok\"");
  if (!ok->get<bool>()) {
    const auto error = j.find("error");
    if (error == j.end() || !error->is_string())
      return Error("tallyd reported an error without a message");
    return Error(error->get<std::string>());
  }
  const auto result = j.find("result");
  if (result == j.end() || !result->is_object()) {
    return Error("tallyd sent a response whose result is not an object");
  }
  return std::move(*result);
}

}  // namespace tally::control
