#include "moe/base/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace taskmoe {
namespace {

absl::StatusOr<std::unique_ptr<int>> MaybeBoxedInt(bool ok, int value) {
  if (!ok) return absl::NotFoundError("no int");
  return std::make_unique<int>(value);
}

absl::StatusOr<int> MaybeInt(bool ok, int value) {
  if (!ok) return absl::NotFoundError("no int");
  return value;
}

// Doubles the value twice through the macro; counts how far it got.
absl::StatusOr<int> Doubled(bool first_ok, bool second_ok, int* reached) {
  TASKMOE_ASSIGN_OR_RETURN(std::unique_ptr<int> a, MaybeBoxedInt(first_ok, 3));  // move-only
  ++*reached;
  int b = 0;
  TASKMOE_ASSIGN_OR_RETURN(b, MaybeInt(second_ok, *a * 2));  // assigns an existing variable
  ++*reached;
  return b * 2;
}

absl::Status Checked(absl::Status first, int* reached) {
  TASKMOE_RETURN_IF_ERROR(first);
  ++*reached;
  return absl::OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnMovesValuesAndStopsAtTheFirstError) {
  int reached = 0;
  absl::StatusOr<int> value = Doubled(true, true, &reached);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, 12);
  EXPECT_EQ(reached, 2);

  reached = 0;
  value = Doubled(false, true, &reached);
  EXPECT_EQ(value.status(), absl::NotFoundError("no int"));
  EXPECT_EQ(reached, 0);

  reached = 0;
  value = Doubled(true, false, &reached);
  EXPECT_EQ(value.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorPassesTheStatusThrough) {
  int reached = 0;
  EXPECT_TRUE(Checked(absl::OkStatus(), &reached).ok());
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(Checked(absl::DataLossError("torn"), &reached), absl::DataLossError("torn"));
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace taskmoe
