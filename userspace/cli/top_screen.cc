#include "cli/top_screen.h"

#include <langinfo.h>
#include <time.h>

#include <cstring>
#include <cwchar>

#include <fmt/format.h>

#include "cli/lenient_json.h"
#include "cli/render.h"
#include "tally/time_util.h"

namespace tally::cli {

namespace {

using namespace lenient;

// Lines above the column titles, and below the rows (the footer).
constexpr std::size_t kHeaderLines = 3;
constexpr std::size_t kFooterLines = 1;
// Below this width the CONTAINER column goes, so that the command line
// keeps some room (the column's 21 of the 72 fixed columns).
constexpr std::size_t kContainerMinCols = 100;

bool utf8_locale() { return std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0; }

std::string clock_time(std::uint64_t ns) {
  const time_t t = static_cast<time_t>(ns / 1'000'000'000);
  tm local{};
  char buf[16] = "";
  if (localtime_r(&t, &local) != nullptr) std::strftime(buf, sizeof buf, "%H:%M:%S", &local);
  return buf;
}

// "web-1: tallyd HEALTHY, every 1 s, sample at 12:03:04", or the first
// reason it is not.
ScreenLine health_line(const Json& top) {
  const Json& agent = object(top, "agent");
  std::string host = str(agent, "host");
  std::string line = (host.empty() ? std::string() : host + ": ") + "tallyd ";
  const std::string health = str(agent, "health");
  const bool degraded = health == "degraded";
  if (health.empty()) {
    line += "health unknown";
  } else if (!degraded) {
    line += "HEALTHY";
  } else {
    line += "DEGRADED: " + str(agent, "first_reason");
    if (const std::uint64_t more = u64(agent, "reasons"); more > 1) {
      line += fmt::format(" (+{} more: tally status)", more - 1);
    }
  }
  line += fmt::format(", every {} s", u64(top, "interval_s"));
  if (const std::uint64_t ts = u64(top, "ts_ns"); ts > 0) line += ", sample at " + clock_time(ts);
  return {line, degraded ? LineStyle::bold : LineStyle::plain};
}

// "cpu 25.4% of 2 CPUs  processes 10  outbox 0 pending  sink default healthy":
// the line that says whether tallyd is well, short enough for 80 columns
// with one sink.
ScreenLine figures_line(const Json& top) {
  std::string line;
  if (const Json& host = member(top, "host"); host.is_object()) {
    line = fmt::format("cpu {:.1f}% of {} CPUs  processes {}", number(host, "cpu_pct"),
                       u64(host, "ncpu"), u64(host, "processes"));
  } else {
    line = "no interval sampled yet";
  }
  const Json& agent = object(top, "agent");
  const Json& outbox = object(agent, "outbox");
  line += outbox.contains("error")
              ? "  outbox ERROR: " + str(outbox, "error")
              : fmt::format("  outbox {} pending", u64(outbox, "pending_batches"));
  const Json& sinks = list(agent, "sinks");
  if (sinks.empty()) line += "  no sink (samples stay in the outbox)";
  bool failing = false;
  for (const auto& k : sinks) {
    const std::string state = str(k, "state");
    failing = failing || state == "failing";
    line += fmt::format("  sink {} {}", str(k, "name"), state);
  }
  return {line, failing ? LineStyle::bold : LineStyle::plain};
}

}  // namespace

std::size_t top_screen_rows(std::size_t rows) {
  const std::size_t around = kHeaderLines + 1 + kFooterLines;  // + column titles
  return rows > around ? rows - around : 1;
}

std::vector<ScreenLine> top_screen(const nlohmann::json& top, std::string_view problem,
                                   std::string_view footer, std::size_t cols, std::size_t rows) {
  std::vector<ScreenLine> lines;
  lines.push_back(health_line(top));
  lines.push_back(figures_line(top));
  lines.push_back({std::string(problem), LineStyle::bold});

  const bool with_container = cols >= kContainerMinCols || str(top, "sort") == "container";
  std::vector<std::string> table = top_table(top, with_container);
  const std::size_t fit = top_screen_rows(rows);
  for (std::size_t i = 0; i < table.size() && i <= fit; ++i) {
    lines.push_back({std::move(table[i]), i == 0 ? LineStyle::reverse : LineStyle::plain});
  }
  if (lines.size() > rows) lines.resize(rows);
  if (rows > lines.size()) {
    lines.resize(rows - kFooterLines);
    lines.push_back({std::string(footer), LineStyle::reverse});
  }
  for (ScreenLine& l : lines) l.text = fit_columns(l.text, cols, l.style == LineStyle::reverse);
  return lines;
}

std::string fit_columns(std::string_view text, std::size_t cols, bool pad) {
  const bool utf8 = utf8_locale();
  std::string out;
  std::size_t used = 0;
  std::mbstate_t state{};
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 1;
    int width = 1;
    bool shown = c >= 0x20 && c < 0x7f;  // printable() escaped the controls already
    if (c >= 0x80 && utf8) {
      wchar_t wc = 0;
      const std::size_t n = std::mbrtowc(&wc, text.data() + i, text.size() - i, &state);
      if (n == static_cast<std::size_t>(-1) || n == static_cast<std::size_t>(-2) || n == 0) {
        state = std::mbstate_t{};
      } else {
        length = n;
        width = ::wcwidth(wc);
        shown = width >= 0;
        if (!shown) width = 1;
      }
    }
    if (used + static_cast<std::size_t>(width) > cols) break;
    if (shown) {
      out.append(text.substr(i, length));
    } else {
      out += '?';
    }
    used += static_cast<std::size_t>(width);
    i += length;
  }
  if (pad) out.append(cols - used, ' ');
  return out;
}

}  // namespace tally::cli
