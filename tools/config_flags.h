#ifndef TASKMOE_TOOLS_CONFIG_FLAGS_H_
#define TASKMOE_TOOLS_CONFIG_FLAGS_H_

#include <string>
#include <vector>

namespace taskmoe {

// Takes every `--set=path=value` (or `--set path=value`) out of argv, in order, before absl
// parses the rest: absl keeps only the last value of a repeated flag, and a comma-separated
// list flag would split values such as "model.encoder_vanilla_layers=0,1".
std::vector<std::string> TakeConfigOverrides(int* argc, char** argv);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_CONFIG_FLAGS_H_
