// ParseSafetensors on arbitrary bytes; tensors it accepts must survive SerializeSafetensors and
// ParseSafetensors with the same names, dtypes, shapes and bytes (NaN payloads too).

#include <ATen/ATen.h>
#include <glog/logging.h>

#include "moe/formats/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void CheckSameTensors(const taskmoe::TensorMap& a, const taskmoe::TensorMap& b) {
  CHECK_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    const at::Tensor& other = b.at(name);
    CHECK(other.scalar_type() == tensor.scalar_type()) << name;
    CHECK(other.sizes() == tensor.sizes()) << name;
    CHECK(taskmoe::fuzzing::SameBytes(other.contiguous().data_ptr(),
                                      tensor.contiguous().data_ptr(), tensor.nbytes()))
        << name;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::StatusOr<taskmoe::TensorMap> tensors =
      taskmoe::ParseSafetensors(taskmoe::fuzzing::AsText(data, size), "fuzz.safetensors");
  if (!tensors.ok()) return 0;
  taskmoe::CheckFiniteTensors(*tensors, "fuzz.safetensors").IgnoreError();
  const absl::StatusOr<std::string> bytes = taskmoe::SerializeSafetensors(*tensors);
  CHECK(bytes.ok()) << bytes.status();
  const absl::StatusOr<taskmoe::TensorMap> again =
      taskmoe::ParseSafetensors(*bytes, "serialized.safetensors");
  CHECK(again.ok()) << again.status();
  CheckSameTensors(*tensors, *again);
  return 0;
}
