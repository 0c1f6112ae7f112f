// trainer_state.json: TrainerStateFromJson on arbitrary text; a state it accepts must survive
// TrainerStateToJson and TrainerStateFromJson (a resumed run writes what it read).

#include <string>

#include <glog/logging.h>

#include "moe/train/checkpoint.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

bool SameDouble(double a, double b) {
  return taskmoe::fuzzing::SameBytes(&a, &b, sizeof(double));
}

void CheckSameState(const taskmoe::TrainerState& a, const taskmoe::TrainerState& b) {
  CHECK_EQ(a.step, b.step);
  CHECK(SameDouble(a.best_dev_performance, b.best_dev_performance));
  CHECK_EQ(a.best_step, b.best_step);
  CHECK(a.data_position == b.data_position);
  CHECK_EQ(a.history.size(), b.history.size());
  for (size_t i = 0; i < a.history.size(); ++i) {
    CHECK_EQ(a.history[i].step, b.history[i].step);
    CHECK(SameDouble(a.history[i].train_loss, b.history[i].train_loss));
    CHECK(SameDouble(a.history[i].dev_loss, b.history[i].dev_loss));
    CHECK(SameDouble(a.history[i].dev_performance, b.history[i].dev_performance));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::StatusOr<taskmoe::TrainerState> state = taskmoe::TrainerStateFromJson(
      std::string(taskmoe::fuzzing::AsText(data, size)), "fuzz/trainer_state.json");
  if (!state.ok()) return 0;
  const std::string json = taskmoe::TrainerStateToJson(*state);
  const absl::StatusOr<taskmoe::TrainerState> again =
      taskmoe::TrainerStateFromJson(json, "written/trainer_state.json");
  CHECK(again.ok()) << again.status() << "\n" << json;
  CheckSameState(*state, *again);
  return 0;
}
