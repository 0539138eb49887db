// The control socket protocol between tallyd and the tally CLI.
//
// One JSON object per line in each direction over a Unix stream socket.
//   request:  {"version":1,"command":"status"}
//             {"version":1,"command":"top","n":10}
//             {"version":1,"command":"flush","timeout_s":30}
//   response: {"version":1,"ok":true,"result":{...}}
//             {"version":1,"ok":false,"error":"what went wrong"}
//
// The fields of a request, and what each accepts:
//   version    required; the whole number 1. Another whole number gets an
//              error naming both versions.
//   command    required; a string: "status", "top" or "flush".
//   n          top only, optional: how many processes, a whole number from
//              1 to 10000 (kTopN); 10 when absent.
//   by         top only, optional: "process" (default), "cgroup", "container"
//              or "pod": one row per process, or per group of processes.
//   sort       top only, optional: which rows come first, and so which n are
//              sent: "cpu" (default; most first), "rss" (most first), "wait"
//              (most run-queue wait first), "pid" (lowest first) or
//              "container" (by container name, processes in none last).
//              Group rows have no pid: "pid" sorts them by name, as
//              "container" does. Ties go to the most CPU.
//   timeout_s  flush only, optional: seconds to wait, a whole number from 1
//              to 3600 (kFlushTimeout); 30 when absent.
// "Whole number" means a JSON integer: 10.0, "10", null, true, arrays and
// objects are refused like out-of-range values. A field given twice is
// refused. Fields a command does not use, and unknown fields, are ignored.
// A refused request gets ok:false naming the field, what it accepts and what
// it got (its JSON type, or the number), and tallyd closes the connection.
//
// Framing limits: a request line is at most kMaxRequestBytes including its
// newline, and its JSON is nested at most kMaxRequestDepth deep; a line
// without a newline before EOF is refused. A response line is at most
// kMaxResponseBytes.
//
// New fields may appear in results at any time; clients ignore what they do
// not know. The status result's fields are listed in docs/operations.md.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "tally/result.h"

namespace tally::control {

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxRequestBytes = 4096;
inline constexpr int kMaxRequestDepth = 8;
inline constexpr std::size_t kMaxResponseBytes = 1 << 20;
inline constexpr const char* kDefaultSocket = "/run/tally/tally.sock";

// A request field holding a whole number within [min, max].
struct WholeNumberField {
  const char* name;
  int min;
  int max;
  int fallback;  // when the field is absent
};
inline constexpr WholeNumberField kTopN{"n", 1, 10000, 10};
inline constexpr WholeNumberField kFlushTimeout{"timeout_s", 1, 3600, 30};

struct StatusRequest {};
enum class TopGrouping { process, cgroup, container, pod };
inline constexpr const char* kTopGroupings = "process, cgroup, container, pod";
std::optional<TopGrouping> parse_top_grouping(std::string_view name);

enum class TopSort { cpu, rss, pid, wait, container };
inline constexpr const char* kTopSorts = "cpu, rss, pid, wait, container";
std::optional<TopSort> parse_top_sort(std::string_view name);
std::string_view top_sort_name(TopSort sort);

struct TopRequest {
  int n = kTopN.fallback;
  TopGrouping by = TopGrouping::process;
  TopSort sort = TopSort::cpu;
};
struct FlushRequest {
  int timeout_s = kFlushTimeout.fallback;
};
// A request whose every field has been checked against the rules above.
using Request = std::variant<StatusRequest, TopRequest, FlushRequest>;

// "status", "top", "flush".
std::string_view command_name(const Request& request);

// Client side: the request line for `command`, args merged in.
std::string make_request(std::string_view command, nlohmann::json args = nlohmann::json::object());
// Server side: checks the line (without or with its newline) against the
// rules above. Never throws; the error is the message to send back.
Result<Request> parse_request(std::string_view line);

std::string make_ok(const nlohmann::json& result);
std::string make_error(std::string_view message);
// Client side: the result object of an ok response, or the error it
// carries. Anything else (not JSON, another version, no "ok", a result that
// is not an object) is an error saying so. Never throws.
Result<nlohmann::json> parse_response(std::string_view line);

}  // namespace tally::control
