// The example plugin "fixed" (routes from a .npy file), tested the way a plugin author would.
#include <string>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "moe/formats/npy.h"
#include "moe/routing/routing.h"

namespace taskmoe {
namespace {

using ::testing::HasSubstr;

const RoutingContext kContext = {ModelShape{/*encoder_layers=*/2, /*decoder_layers=*/1, /*experts=*/3},
                                 /*task_vector_dim=*/4, /*num_tasks=*/2};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateFixed(const std::string& routes_npy) {
  RoutingConfig config;
  const std::string text = absl::StrCat(
      R"(plugin: "fixed" params { [type.googleapis.com/taskmoe.FixedRoutingParams] { routes_npy: ")",
      routes_npy, R"(" } })");
  CHECK(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return CreateRoutingPlugin(config, kContext);
}

TEST(FixedRoutingTest, RoutesEachExampleWithItsTasksRowOfTheFile) {
  // routes.npy layout: [tasks, encoder + decoder layers, experts].
  const at::Tensor table = at::softmax(at::randn({2, 3, 3}), -1);
  const std::string path = ::testing::TempDir() + "/fixed_routes.npy";
  ASSERT_TRUE(WriteNpy(path, table).ok());
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin = CreateFixed(path);
  ASSERT_TRUE(plugin.ok()) << plugin.status();

  const RouteWeights routes =
      (*plugin)->Route({at::tensor({1, 0, 1}, at::kLong), at::randn({3, 4}), /*step=*/0});
  ASSERT_TRUE(ValidateRoutes(routes, kContext.shape, 3).ok());
  for (int64_t example = 0; example < 3; ++example) {
    const int64_t task = example == 1 ? 0 : 1;
    EXPECT_TRUE(at::equal(routes.encoder.select(1, example), table[task].narrow(0, 0, 2)));
    EXPECT_TRUE(at::equal(routes.decoder.select(1, example), table[task].narrow(0, 2, 1)));
  }
  // The routes are checkpointed state.
  ASSERT_EQ(RoutingState(**plugin).size(), 1u);
  EXPECT_EQ(RoutingState(**plugin)[0].first, "task_routes");
}

TEST(FixedRoutingTest, FileOfTheWrongShapeOrMissingIsAnError) {
  const std::string path = ::testing::TempDir() + "/fixed_wrong.npy";
  ASSERT_TRUE(WriteNpy(path, at::zeros({2, 4, 3})).ok());
  const absl::Status status = CreateFixed(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("fixed_wrong.npy"));
  EXPECT_THAT(status.message(), HasSubstr("expected float routes [tasks, layers, experts] = [2, 3, 3], got Float [2, 4, 3]"));

  EXPECT_EQ(CreateFixed(::testing::TempDir() + "/absent.npy").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(CreateFixed("").status().message(), HasSubstr("routes_npy must name a .npy file"));
}

}  // namespace
}  // namespace taskmoe
