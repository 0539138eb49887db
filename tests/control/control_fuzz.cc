// libFuzzer target for both ends of the control socket: tallyd's request
// parsing and validation (control_protocol.h), and what the CLI does with a
// response (parse_response, then every renderer and printable()).
//
// Input layout: byte 0 picks the path, the rest is the text:
//   0  a request line for parse_request
//   1  a response line for parse_response, then its result rendered
//   2  JSON rendered directly as a status, top (one-shot and live screen)
//      and flush result (the renderers reached without the response
//      envelope)
//   3  text for printable()
// Beyond "no crash, no leak, no UB" it checks the contracts: an accepted
// request is within the field rules; a refusal has a message that travels
// back through make_error/parse_response intact; nothing rendered holds a
// byte a terminal would act on.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "cli/render.h"
#include "cli/terminal_text.h"
#include "cli/top_screen.h"
#include "control/control_protocol.h"

namespace {

namespace control = tally::control;

void check(bool invariant) {
  if (!invariant) __builtin_trap();
}

// No C0 control but the newline, no DEL, no C1 control, no bidirectional
// control, no byte that is not UTF-8.
void check_terminal_safe(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const auto at = [&](std::size_t k) {
      return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
    };
    check(b >= 0x20 || b == '\n');
    check(b != 0x7F);
    if (b < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    check(b >= 0xC2 && b <= 0xF4 && i + n <= s.size());
    for (std::size_t k = 1; k < n; ++k) check((at(k) & 0xC0) == 0x80);
    check(!(b == 0xC2 && at(1) <= 0x9F));                                    // C1
    check(!(b == 0xE2 && at(1) == 0x80 && at(2) >= 0xAA && at(2) <= 0xAE));  // bidi
    check(!(b == 0xE2 && at(1) == 0x81 && at(2) >= 0xA6 && at(2) <= 0xA9));
    i += n;
  }
}

void fuzz_request(std::string_view line) {
  auto request = control::parse_request(line);
  if (request.ok()) {
    const std::string_view name = control::command_name(*request);
    check(name == "status" || name == "top" || name == "flush");
    if (const auto* top = std::get_if<control::TopRequest>(&*request)) {
      check(top->n >= control::kTopN.min && top->n <= control::kTopN.max);
    }
    if (const auto* flush = std::get_if<control::FlushRequest>(&*request)) {
      check(flush->timeout_s >= control::kFlushTimeout.min &&
            flush->timeout_s <= control::kFlushTimeout.max);
    }
    return;
  }
  // The refusal as tallyd sends it, read back as the CLI reads it: one
  // line, and the same message (the peer's text never breaks the framing).
  const std::string& message = request.error().message();
  check(!message.empty());
  const std::string reply = control::make_error(message);
  check(reply.find('\n') == reply.size() - 1);
  auto back = control::parse_response(reply);
  check(!back.ok());
  check(nlohmann::json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) ==
        nlohmann::json(back.error().message()).dump());
}

void render_all(const nlohmann::json& result) {
  check_terminal_safe(tally::cli::render_status(result, 1'700'000'000'000'000'000ULL));
  check_terminal_safe(tally::cli::render_top(result, 0));
  check_terminal_safe(tally::cli::render_top(result, 40));
  for (const auto& line : tally::cli::top_screen(result, "", "", 60, 20)) {
    check_terminal_safe(line.text);
    check(line.text.size() <= 60);  // C locale: a byte a column
  }
  check_terminal_safe(tally::cli::render_flush(result));
  (void)tally::cli::reports_healthy(result);
  (void)tally::cli::flush_emptied(result);
  const std::string json = tally::cli::render_json(result);
  for (unsigned char c : json) check(c < 0x80 && (c >= 0x20 || c == '\n'));
  check(!nlohmann::json::parse(json, nullptr, false).is_discarded());
}

void fuzz_response(std::string_view line) {
  auto result = control::parse_response(line);
  if (!result.ok()) {
    check(!result.error().message().empty());
    check_terminal_safe(tally::cli::printable(result.error().message()));
    return;
  }
  check(result->is_object());
  render_all(*result);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] & 3) {
    case 0:
      fuzz_request(rest);
      break;
    case 1:
      fuzz_response(rest);
      break;
    case 2: {
      const auto j = nlohmann::json::parse(rest, nullptr, false);
      if (!j.is_discarded()) render_all(j);
      break;
    }
    default:
      check_terminal_safe(tally::cli::printable(rest));
  }
  return 0;
}
