#ifndef TASKMOE_MOE_FORMATS_TENSOR_SHAPE_H_
#define TASKMOE_MOE_FORMATS_TENSOR_SHAPE_H_

#include <string>

#include <c10/util/ArrayRef.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace taskmoe {

// A tensor shape as error messages write it: "[2, 3, 4]".
inline std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_TENSOR_SHAPE_H_
