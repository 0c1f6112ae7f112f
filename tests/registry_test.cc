#include "moe/base/registry.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace taskmoe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A toy plugin kind: shapes built from a size.
class Shape {
 public:
  virtual ~Shape() = default;
  virtual int Area() const = 0;
};

class Square : public Shape {
 public:
  explicit Square(int side) : side_(side) {}
  int Area() const override { return side_ * side_; }

 private:
  int side_;
};

using ShapeRegistry = Registry<Shape, int>;

absl::StatusOr<std::shared_ptr<Shape>> MakeSquare(int side) {
  if (side < 0) return absl::InvalidArgumentError("negative side");
  return std::make_shared<Square>(side);
}

// Registered the way plugins register: one line at namespace scope.
TASKMOE_REGISTER(ShapeRegistry, "square", MakeSquare);

TEST(RegistryTest, StaticRegistrationIsVisibleAndCreates) {
  ASSERT_TRUE(ShapeRegistry::Global().Contains("square"));
  absl::StatusOr<std::shared_ptr<Shape>> square = ShapeRegistry::Global().Create("square", 3);
  ASSERT_TRUE(square.ok()) << square.status();
  EXPECT_EQ((*square)->Area(), 9);
}

TEST(RegistryTest, FactoryErrorsPassThrough) {
  absl::StatusOr<std::shared_ptr<Shape>> square = ShapeRegistry::Global().Create("square", -1);
  EXPECT_EQ(square.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(square.status().message(), HasSubstr("negative side"));
}

TEST(RegistryTest, NamesAreSortedAndUnknownNameListsThem) {
  using Local = Registry<Shape, int, int>;  // a separate kind: its own table
  ASSERT_TRUE(Local::Global()
                  .Register("zigzag", [](int, int) -> absl::StatusOr<std::shared_ptr<Shape>> {
                    return std::make_shared<Square>(1);
                  })
                  .ok());
  ASSERT_TRUE(Local::Global()
                  .Register("band", [](int a, int b) -> absl::StatusOr<std::shared_ptr<Shape>> {
                    return std::make_shared<Square>(a + b);
                  })
                  .ok());
  EXPECT_THAT(Local::Global().Names(), ElementsAre("band", "zigzag"));
  EXPECT_EQ((*Local::Global().Create("band", 2, 3))->Area(), 25);

  absl::StatusOr<std::shared_ptr<Shape>> missing = Local::Global().Create("circle", 1, 1);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("'circle'"));
  EXPECT_THAT(missing.status().message(), HasSubstr("registered: band, zigzag"));
  // The shapes-from-one-int table is untouched.
  EXPECT_FALSE(ShapeRegistry::Global().Contains("band"));
}

TEST(RegistryTest, RejectsDuplicateAndEmptyNames) {
  const absl::Status duplicate = ShapeRegistry::Global().Register("square", MakeSquare);
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(duplicate.message(), HasSubstr("'square'"));
  EXPECT_EQ(ShapeRegistry::Global().Register("", MakeSquare).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShapeRegistry::Global().Register("none", nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RegistryTest, EmptyRegistrySaysSo) {
  using Empty = Registry<Shape, double>;
  EXPECT_THAT(Empty::Global().Create("x", 1.0).status().message(), HasSubstr("(none)"));
}

}  // namespace
}  // namespace taskmoe
