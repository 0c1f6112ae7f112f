#include "tools/config_flags.h"

namespace taskmoe {

std::vector<std::string> TakeConfigOverrides(int* argc, char** argv) {
  std::vector<std::string> overrides;
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--set=", 0) == 0) {
      overrides.push_back(arg.substr(6));
    } else if (arg == "--set" && i + 1 < *argc) {
      overrides.push_back(argv[++i]);
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  return overrides;
}

}  // namespace taskmoe
