// Experiment configs as the tools read them: a text proto that may extend a base file
// (`base: "base.pbtxt"`) and --set overrides. The input holds three parts (fuzz_input.h): the
// config, the base file beside it, and one override per line. A config that parses must print
// to text that parses back to the same text.

#include <string>
#include <vector>

#include <glog/logging.h>

#include "absl/strings/str_split.h"
#include "moe/train/experiment_config.h"
#include "routing_plugins/annealed/annealed.pb.h"
#include "routing_plugins/average/average.pb.h"
#include "routing_plugins/fixed/fixed.pb.h"
#include "routing_plugins/instance_random/instance_random.pb.h"
#include "routing_plugins/learned/learned.pb.h"
#include "routing_plugins/polytropon/polytropon.pb.h"
#include "routing_plugins/task_random/task_random.pb.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// The routing plugins' params messages, referenced so the linker keeps them: configs name them
// in `params { [type.googleapis.com/...] { ... } }`, which parse only when the type is linked
// in, as in the tools.
const bool kParamsLinked = taskmoe::AnnealedRoutingParams::descriptor() != nullptr &&
                           taskmoe::AverageRoutingParams::descriptor() != nullptr &&
                           taskmoe::FixedRoutingParams::descriptor() != nullptr &&
                           taskmoe::InstanceRandomRoutingParams::descriptor() != nullptr &&
                           taskmoe::LearnedRoutingParams::descriptor() != nullptr &&
                           taskmoe::PolytroponRoutingParams::descriptor() != nullptr &&
                           taskmoe::TaskRandomRoutingParams::descriptor() != nullptr;

void CheckTextRoundTrip(const taskmoe::ExperimentConfig& config) {
  const std::string text = taskmoe::ExperimentConfigToText(config);
  const absl::StatusOr<taskmoe::ExperimentConfig> again =
      taskmoe::ParseExperimentConfig(text, "printed");
  CHECK(again.ok()) << again.status() << "\n" << text;
  CHECK_EQ(taskmoe::ExperimentConfigToText(*again), text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CHECK(kParamsLinked);
  using taskmoe::fuzzing::WriteScratchFile;
  const std::vector<std::string_view> parts =
      taskmoe::fuzzing::SplitParts(taskmoe::fuzzing::AsText(data, size), 3);
  const absl::StatusOr<taskmoe::ExperimentConfig> parsed =
      taskmoe::ParseExperimentConfig(std::string(parts[0]), "fuzz.pbtxt");
  if (parsed.ok()) CheckTextRoundTrip(*parsed);

  const std::string path = WriteScratchFile("config.pbtxt", parts[0]);
  WriteScratchFile("base.pbtxt", parts.size() > 1 ? parts[1] : "");
  std::vector<std::string> overrides;
  if (parts.size() > 2) overrides = absl::StrSplit(std::string(parts[2]), '\n', absl::SkipEmpty());
  const absl::StatusOr<taskmoe::ExperimentConfig> loaded =
      taskmoe::LoadExperimentConfig(path, overrides);
  if (loaded.ok()) CheckTextRoundTrip(*loaded);
  return 0;
}
