#include "tools/generation_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"

ABSL_FLAG(int64_t, decoder_start_token_id, -1,
          "First decoder token; -1: the config's decoder_start_token_id.");
ABSL_FLAG(int64_t, forced_eos_token_id, -2,
          "Token forced at position max_length-1; -2: the config's forced_eos_token_id; -1: "
          "none.");

namespace taskmoe {

void ApplyDecodingFlags(GenerationOptions* options) {
  if (absl::GetFlag(FLAGS_decoder_start_token_id) >= 0) {
    options->decoder_start_token_id = absl::GetFlag(FLAGS_decoder_start_token_id);
  }
  if (absl::GetFlag(FLAGS_forced_eos_token_id) != -2) {
    options->forced_eos_token_id = absl::GetFlag(FLAGS_forced_eos_token_id);
  }
}

}  // namespace taskmoe
