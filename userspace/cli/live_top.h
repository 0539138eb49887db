// `tally top` on a terminal: a screen refreshed at every interval of tallyd
// until q or Ctrl-C, like top(1), drawn with ncurses.
//
// Each refresh is one `top` request; its answer carries the host figures
// and the agent's health, outbox depth and sink states for the header
// (docs/operations.md). Between refreshes the screen sleeps in getch's
// timeout, waking for a key, a resize or a signal.
//
// If tallyd does not answer at start, nothing is drawn: the error comes
// back for tally to print, as a one-shot `tally top` would. If it stops
// answering later (a restart, an upgrade), the screen says so above the
// last rows it got and retries every 2 s, until tallyd is back or the
// user quits.
#pragma once

#include <string>

#include "control/control_protocol.h"

namespace tally::cli {

struct LiveTopOptions {
  std::string socket;
  std::string by = "process";
  control::TopSort sort = control::TopSort::cpu;
  int max_rows = 0;  // -n; 0: as many as fit
};

struct LiveTopOutcome {
  // 0 on q and Ctrl-C; 128 + the signal on SIGTERM and SIGHUP; 1 or 2 (as
  // for a one-shot `tally top`) when tallyd failed at start.
  int exit_code = 0;
  std::string error;         // why, when it failed at start
  bool no_terminal = false;  // ncurses knows no such terminal: print once instead
};

// Runs the screen until the user quits. The terminal is restored on every
// way out (RAII around newterm/endwin), before this returns.
LiveTopOutcome run_live_top(const LiveTopOptions& options);

}  // namespace tally::cli
