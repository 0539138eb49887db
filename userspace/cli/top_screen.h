// What the live `tally top` screen shows, as lines that fit it. Pure (no
// terminal, no socket), so it is tested without either; live_top.cc draws
// the lines with ncurses.
//
// Like render.h, it takes any JSON: what is missing reads as empty or 0, and
// every string from tallyd is shown through printable().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tally::cli {

enum class LineStyle { plain, bold, reverse };

struct ScreenLine {
  std::string text;  // at most the screen's width in display columns
  LineStyle style = LineStyle::plain;
};

// Layout, top to bottom:
//   host and health (the first reason when degraded), interval, sample time
//   host CPU %, process count, outbox depth, each sink's state
//   `problem` (why the rows are not fresh), or blank
//   column titles, reverse video
//   rows, as many as fit (top_screen_rows)
//   `footer` (the keys), reverse video, on the last line
// Every line is cut to `cols` display columns, never wrapped; reverse
// lines are padded to the full width. A screen too short for all of it
// keeps the lines from the top.
std::vector<ScreenLine> top_screen(const nlohmann::json& top, std::string_view problem,
                                   std::string_view footer, std::size_t cols, std::size_t rows);

// How many rows fit on a screen `rows` lines high (at least 1): how many to
// ask tallyd for.
std::size_t top_screen_rows(std::size_t rows);

// The first `cols` display columns of UTF-8 text, by the current locale's
// character widths (setlocale(LC_CTYPE)); in a locale without UTF-8, and
// for characters of no known width, non-ASCII shows as '?'. With `pad`,
// spaces fill it to exactly `cols` columns.
std::string fit_columns(std::string_view text, std::size_t cols, bool pad = false);

}  // namespace tally::cli
