#ifndef TASKMOE_MOE_FORMATS_NPY_H_
#define TASKMOE_MOE_FORMATS_NPY_H_

#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace taskmoe {

// NumPy .npy files (format versions 1.0 and 2.0 read, 1.0 written), the format of task_vecs.npy
// and routes.npy. Supported element types: little-endian float32 ('<f4'), float64 ('<f8'),
// int32 ('<i4') and int64 ('<i8'); C or Fortran order on reading.

// Parses the bytes of a .npy file; `source` names it in errors. Returns a CPU tensor of the
// file's dtype and shape (C-contiguous).
absl::StatusOr<at::Tensor> ParseNpy(absl::string_view bytes, absl::string_view source);

// Reads a .npy file.
absl::StatusOr<at::Tensor> ReadNpy(const std::string& path);

// The bytes of a .npy v1.0 file holding `tensor` (any device; copied to CPU, C order).
absl::StatusOr<std::string> SerializeNpy(const at::Tensor& tensor);

// Writes `tensor` to `path` through a temporary file renamed into place, so a failed write
// never leaves a truncated file behind.
absl::Status WriteNpy(const std::string& path, const at::Tensor& tensor);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_NPY_H_
