#ifndef TASKMOE_TOOLS_GENERATION_FLAGS_H_
#define TASKMOE_TOOLS_GENERATION_FLAGS_H_

// Decoding flags of the tools that generate (generate, score), defined once:
//   --decoder_start_token_id  first decoder token; -1: the model config's
//   --forced_eos_token_id     token forced at position max_length-1; -2: the config's; -1: none

#include "moe/model/generation.h"

namespace taskmoe {

// Sets options->decoder_start_token_id and forced_eos_token_id from the flags.
void ApplyDecodingFlags(GenerationOptions* options);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_GENERATION_FLAGS_H_
