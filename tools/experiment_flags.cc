#include "tools/experiment_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/model_flags.h"

ABSL_FLAG(std::optional<int>, seed, std::nullopt,
          "Random seed (training.seed: data order, initialisation, dropout). Unset: the "
          "config's.");

namespace taskmoe {

std::vector<std::string> WithExperimentFlagOverrides(const std::vector<std::string>& overrides) {
  std::vector<std::string> all = ModelFlagConfigOverrides();
  if (const std::optional<int> seed = absl::GetFlag(FLAGS_seed)) {
    all.push_back(absl::StrCat("training.seed=", *seed));
  }
  all.insert(all.end(), overrides.begin(), overrides.end());
  return all;
}

}  // namespace taskmoe
