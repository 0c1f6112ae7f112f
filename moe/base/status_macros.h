#ifndef TASKMOE_MOE_BASE_STATUS_MACROS_H_
#define TASKMOE_MOE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"

// Returns the status of `expr` from the enclosing function when it is not OK (Debian's Abseil
// has no status macros of its own).
#define TASKMOE_RETURN_IF_ERROR(expr)                        \
  do {                                                       \
    if (::absl::Status _taskmoe_status = (expr); !_taskmoe_status.ok()) { \
      return _taskmoe_status;                                \
    }                                                        \
  } while (0)

#endif  // TASKMOE_MOE_BASE_STATUS_MACROS_H_
