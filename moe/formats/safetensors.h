#ifndef TASKMOE_MOE_FORMATS_SAFETENSORS_H_
#define TASKMOE_MOE_FORMATS_SAFETENSORS_H_

// Reader and writer of the safetensors format (https://github.com/huggingface/safetensors):
// u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} with an
// optional "__metadata__" string map, then the raw little-endian tensor bytes.

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace taskmoe {

// Tensors by name; ordered so that files are written deterministically.
using TensorMap = std::map<std::string, at::Tensor>;

// Parses a whole safetensors file held in `bytes`. `source_name` (usually the path) is named in
// every error. Validates the header length, the JSON, every dtype and shape, that each tensor's
// byte range lies inside the data section, has exactly dtype size x numel bytes, and that no two
// ranges overlap. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
absl::StatusOr<TensorMap> ParseSafetensors(std::string_view bytes, const std::string& source_name);

// Reads and parses the file at `path`.
absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path);

// Serialises `tensors` (any device, any layout; copied to contiguous CPU memory) with
// "__metadata__" = {"format": "pt"}, the header padded with spaces to a multiple of 8 bytes,
// and the data ordered by decreasing element alignment, then by name.
absl::StatusOr<std::string> SerializeSafetensors(const TensorMap& tensors);

// An error naming `source` and the first tensor (by name) whose floating-point values include
// NaN or infinities: weights that can only produce NaN outputs, loaded as if they were fine.
absl::Status CheckFiniteTensors(const TensorMap& tensors, const std::string& source);

// Writes SerializeSafetensors(tensors) to `path` atomically (moe/base/file_io: temporary + rename),
// so a failure never leaves a partial file under `path`.
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_SAFETENSORS_H_
