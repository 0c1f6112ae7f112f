// ParseBartConfig on arbitrary text; a config it accepts must pass its own parameter bound.

#include <glog/logging.h>

#include "moe/formats/bart_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::StatusOr<taskmoe::BartConfig> config = taskmoe::ParseBartConfig(
      std::string(taskmoe::fuzzing::AsText(data, size)), "fuzz/config.json");
  if (!config.ok()) return 0;
  const absl::Status bound = taskmoe::CheckBartParameterCount(*config, "fuzz/config.json");
  CHECK(bound.ok()) << bound;
  return 0;
}
