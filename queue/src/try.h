// Propagates a failed Result/Status unchanged (TALLY_TRY_CTX adds context).
#pragma once

#define QUEUE_TRY(expr)                                  \
  do {                                                   \
    auto&& queue_try_result_ = (expr);                   \
    if (!queue_try_result_.ok()) {                       \
      return queue_try_result_.error();                  \
    }                                                    \
  } while (0)
