// The control socket protocol between tallyd and the tally CLI.
//
// One JSON object per line in each direction over a Unix stream socket.
//   request:  {"version":1,"command":"status"}
//             {"version":1,"command":"top","n":10}
//             {"version":1,"command":"flush","timeout_s":30}
//   response: {"version":1,"ok":true,"result":{...}}
//             {"version":1,"ok":false,"error":"what went wrong"}
// A peer speaking another version gets ok:false naming both versions. New
// fields may appear in results at any time; clients ignore what they do not
// know. The status result's fields are listed in docs/operations.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tally/result.h"

namespace tally::control {

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxMessageBytes = 1 << 20;
inline constexpr const char* kDefaultSocket = "/run/tally/tally.sock";

struct Request {
  std::string command;
  nlohmann::json args;  // the whole request object
};

std::string make_request(std::string_view command, nlohmann::json args = nlohmann::json::object());
Result<Request> parse_request(std::string_view line);

std::string make_ok(const nlohmann::json& result);
std::string make_error(std::string_view message);
// The result of an ok response, or the error it carries.
Result<nlohmann::json> parse_response(std::string_view line);

}  // namespace tally::control
