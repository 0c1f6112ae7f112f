#ifndef TASKMOE_MOE_BASE_STATUS_MACROS_H_
#define TASKMOE_MOE_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Debian's Abseil has no status macros of its own.

// Returns the status of `expr` from the enclosing function when it is not OK.
#define TASKMOE_RETURN_IF_ERROR(expr)                                     \
  do {                                                                    \
    if (::absl::Status _taskmoe_status = (expr); !_taskmoe_status.ok()) { \
      return _taskmoe_status;                                             \
    }                                                                     \
  } while (0)

// Evaluates `expr` (an absl::StatusOr<T>); returns its status from the enclosing function when
// it is not OK, else moves its value into `lhs` (a declaration such as `auto x` or an lvalue).
#define TASKMOE_ASSIGN_OR_RETURN(lhs, expr) \
  TASKMOE_ASSIGN_OR_RETURN_IMPL_(TASKMOE_STATUS_CONCAT_(_taskmoe_statusor_, __LINE__), lhs, expr)

#define TASKMOE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = *std::move(statusor)

#define TASKMOE_STATUS_CONCAT_(a, b) TASKMOE_STATUS_CONCAT_INNER_(a, b)
#define TASKMOE_STATUS_CONCAT_INNER_(a, b) a##b

#endif  // TASKMOE_MOE_BASE_STATUS_MACROS_H_
