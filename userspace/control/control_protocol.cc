#include "control_protocol.h"

#include <fmt/format.h>

namespace tally::control {

namespace {
std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}
}  // namespace

std::string make_request(std::string_view command, nlohmann::json args) {
  args["version"] = kProtocolVersion;
  args["command"] = command;
  return dump_line(args);
}

Result<Request> parse_request(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error("request is not a JSON object");
  if (!j.contains("version") || !j["version"].is_number_integer()) {
    return Error("request has no integer \"version\"");
  }
  if (j["version"].get<int>() != kProtocolVersion) {
    return Error::format("protocol version {} not supported (this tallyd speaks {})",
                         j["version"].dump(), kProtocolVersion);
  }
  if (!j.contains("command") || !j["command"].is_string()) {
    return Error("request has no string \"command\"");
  }
  return Request{j["command"].get<std::string>(), std::move(j)};
}

std::string make_ok(const nlohmann::json& result) {
  return dump_line({{"version", kProtocolVersion}, {"ok", true}, {"result", result}});
}

std::string make_error(std::string_view message) {
  return dump_line({{"version", kProtocolVersion}, {"ok", false}, {"error", message}});
}

Result<nlohmann::json> parse_response(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error("tallyd sent a response that is not JSON");
  if (j.value("version", 0) != kProtocolVersion) {
    return Error::format("tallyd speaks control protocol {}, this tally speaks {}",
                         j.value("version", 0), kProtocolVersion);
  }
  if (!j.value("ok", false)) return Error(j.value("error", std::string("unknown error")));
  return j.value("result", nlohmann::json::object());
}

}  // namespace tally::control
