// ParseNpy on arbitrary bytes; an array it accepts must survive SerializeNpy and ParseNpy with
// the same dtype, shape and bytes (NaN payloads too).

#include <ATen/ATen.h>
#include <glog/logging.h>

#include "moe/formats/npy.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::StatusOr<at::Tensor> array =
      taskmoe::ParseNpy(absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  if (!array.ok()) return 0;
  const absl::StatusOr<std::string> bytes = taskmoe::SerializeNpy(*array);
  CHECK(bytes.ok()) << bytes.status();
  const absl::StatusOr<at::Tensor> again = taskmoe::ParseNpy(*bytes, "serialized.npy");
  CHECK(again.ok()) << again.status();
  CHECK(again->scalar_type() == array->scalar_type());
  CHECK(again->sizes() == array->sizes());
  CHECK(taskmoe::fuzzing::SameBytes(again->data_ptr(), array->contiguous().data_ptr(),
                                    array->nbytes()));
  return 0;
}
