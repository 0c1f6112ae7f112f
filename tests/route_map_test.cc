#include "moe/drawing/route_map.h"

#include <cairo/cairo.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/temporary_files.h"

namespace taskmoe {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

bool FileExists(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  std::fclose(file);
  return true;
}

// Table whose task t routes layer l entirely to expert (t + l) % experts, except tasks in
// `uniform_tasks`, which spread evenly over the experts.
RouteTable OneHotRoutes(int64_t tasks, int64_t layers, int64_t experts,
                        const std::vector<int64_t>& uniform_tasks = {}) {
  RouteTable table{std::vector<float>(tasks * layers * experts, 0.0f), tasks, layers, experts};
  for (int64_t t = 0; t < tasks; ++t) {
    const bool uniform =
        std::find(uniform_tasks.begin(), uniform_tasks.end(), t) != uniform_tasks.end();
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t e = 0; e < experts; ++e) {
        float& value = table.values[(t * layers + l) * experts + e];
        value = uniform ? 1.0f / experts : (e == (t + l) % experts ? 1.0f : 0.0f);
      }
    }
  }
  return table;
}

const std::vector<std::string> kTasks = {"task_a", "task_b", "task_c", "task_d", "task_e"};
const std::vector<RouteCategory> kCategories = {
    {"qa", {"task_c", "task_a", "not_in_routes"}},
    {"classification", {"task_e", "task_c"}},  // task_c stays in its first category
    {"empty", {"nowhere"}},
};

TEST(RouteMapLayoutTest, RowsFollowTheOntologyThenUnlistedTasks) {
  absl::StatusOr<RouteMapLayout> layout =
      LayoutRouteMap(OneHotRoutes(5, 2, 3), kTasks, kCategories, {"enc0", "dec0"});
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->row_task, (std::vector<int64_t>{2, 0, 4, 1, 3}));
  ASSERT_EQ(layout->groups.size(), 3u);
  EXPECT_EQ(layout->groups[0].name, "qa");
  EXPECT_EQ(layout->groups[0].first_row, 0);
  EXPECT_EQ(layout->groups[0].rows, 2);
  EXPECT_EQ(layout->groups[1].name, "classification");
  EXPECT_EQ(layout->groups[1].first_row, 2);
  EXPECT_EQ(layout->groups[1].rows, 1);
  EXPECT_EQ(layout->groups[2].name, kUnlistedCategory);
  EXPECT_EQ(layout->groups[2].first_row, 3);
  EXPECT_EQ(layout->groups[2].rows, 2);
  // Separators sit between groups and between layers, never over a cell.
  EXPECT_EQ(layout->CellY(1) - layout->CellY(0), layout->cell_height);
  EXPECT_EQ(layout->CellY(2) - layout->CellY(1), layout->cell_height + layout->group_gap);
  EXPECT_EQ(layout->CellX(1, 0) - layout->CellX(0, 2), layout->cell_width + layout->layer_gap);
  EXPECT_GT(layout->group_gap, 0);
  EXPECT_GT(layout->layer_gap, 0);
}

TEST(RouteMapLayoutTest, WithoutOntologyEveryTaskIsUnlisted) {
  absl::StatusOr<RouteMapLayout> layout = LayoutRouteMap(OneHotRoutes(5, 1, 2), kTasks, {}, {});
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->row_task, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  ASSERT_EQ(layout->groups.size(), 1u);
  EXPECT_EQ(layout->groups[0].name, kUnlistedCategory);
}

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint32_t> pixels;  // ARGB32
  Rgb At(int x, int y) const {
    const uint32_t pixel = pixels[y * width + x];
    return {static_cast<uint8_t>(pixel >> 16), static_cast<uint8_t>(pixel >> 8),
            static_cast<uint8_t>(pixel)};
  }
};

Image ReadPng(const std::string& path) {
  cairo_surface_t* surface = cairo_image_surface_create_from_png(path.c_str());
  Image image;
  if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
    image.width = cairo_image_surface_get_width(surface);
    image.height = cairo_image_surface_get_height(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    for (int y = 0; y < image.height; ++y) {
      const uint32_t* row = reinterpret_cast<const uint32_t*>(data + y * stride);
      image.pixels.insert(image.pixels.end(), row, row + image.width);
    }
  }
  cairo_surface_destroy(surface);
  return image;
}

std::string ToString(const Rgb& color) {
  return "(" + std::to_string(color.r) + "," + std::to_string(color.g) + "," +
         std::to_string(color.b) + ")";
}

TEST(RouteMapPngTest, CellColoursShowEachTasksRoute) {
  constexpr int64_t kLayers = 3;
  constexpr int64_t kExperts = 4;
  // task_d (unlisted) spreads evenly: 0.25 everywhere.
  const RouteTable routes = OneHotRoutes(5, kLayers, kExperts, /*uniform_tasks=*/{3});
  const std::vector<std::string> layers = {"enc0", "enc1", "dec0"};
  RouteMapOptions options;
  options.title = "routes at step 100";
  const std::string path = TempPath("routes.png");
  ASSERT_TRUE(WriteRouteMapPng(routes, kTasks, kCategories, layers, path, options).ok());
  EXPECT_TRUE(testing::TemporarySiblings(path).empty());

  absl::StatusOr<RouteMapLayout> layout =
      LayoutRouteMap(routes, kTasks, kCategories, layers, options);
  ASSERT_TRUE(layout.ok()) << layout.status();
  const Image image = ReadPng(path);
  ASSERT_EQ(image.width, layout->width);
  ASSERT_EQ(image.height, layout->height);

  const Rgb hot = RouteColor(1.0);
  const Rgb cold = RouteColor(0.0);
  const Rgb quarter = RouteColor(0.25);
  for (int row = 0; row < 5; ++row) {
    const int64_t task = layout->row_task[row];
    for (int64_t l = 0; l < kLayers; ++l) {
      for (int64_t e = 0; e < kExperts; ++e) {
        const Rgb expected = task == 3 ? quarter : (e == (task + l) % kExperts ? hot : cold);
        // Every pixel of the cell, so a shifted grid or an overdrawn separator shows.
        for (int dy = 0; dy < layout->cell_height; ++dy) {
          for (int dx = 0; dx < layout->cell_width; ++dx) {
            const Rgb actual =
                image.At(layout->CellX(l, e) + dx, layout->CellY(row) + dy);
            ASSERT_EQ(actual, expected)
                << kTasks[task] << " layer " << l << " expert " << e << " pixel +" << dx << ",+"
                << dy << ": " << ToString(actual) << " vs " << ToString(expected);
          }
        }
      }
    }
  }
  // Separators between layers and between categories are drawn, not left white.
  const Rgb white = {255, 255, 255};
  EXPECT_FALSE(image.At(layout->CellX(1, 0) - 1, layout->CellY(0)) == white);
  EXPECT_FALSE(image.At(layout->CellX(0, 0), layout->CellY(2) - 1) == white);
}

TEST(RouteMapPngTest, ReplacesAnExistingImage) {
  const std::string path = TempPath("replaced.png");
  ASSERT_TRUE(WriteRouteMapPng(OneHotRoutes(5, 1, 2), kTasks, {}, {}, path).ok());
  const int first_height = ReadPng(path).height;
  RouteMapOptions taller_rows;
  taller_rows.cell_height = 30;
  ASSERT_TRUE(WriteRouteMapPng(OneHotRoutes(5, 1, 2), kTasks, {}, {}, path, taller_rows).ok());
  EXPECT_GT(ReadPng(path).height, first_height);
}

TEST(RouteMapPngTest, ErrorsNameWhatIsWrong) {
  const std::string path = TempPath("bad.png");
  RouteTable short_table = OneHotRoutes(5, 2, 3);
  short_table.values.pop_back();
  absl::Status status = WriteRouteMapPng(short_table, kTasks, {}, {}, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("29 values"), std::string::npos) << status;

  status = WriteRouteMapPng(OneHotRoutes(4, 2, 3), kTasks, {}, {}, path);
  EXPECT_NE(status.message().find("4 task rows but 5 task names"), std::string::npos) << status;

  status = WriteRouteMapPng(OneHotRoutes(5, 2, 3), kTasks, {}, {"enc0"}, path);
  EXPECT_NE(status.message().find("2 layers but 1 layer labels"), std::string::npos) << status;

  RouteMapOptions flat_scale;
  flat_scale.value_max = flat_scale.value_min;
  status = WriteRouteMapPng(OneHotRoutes(5, 2, 3), kTasks, {}, {}, path, flat_scale);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(FileExists(path));

  const std::string unwritable = TempPath("no_such_dir/routes.png");
  status = WriteRouteMapPng(OneHotRoutes(5, 2, 3), kTasks, {}, {}, unwritable);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(unwritable), std::string::npos) << status;
}

TEST(RouteColorTest, ScaleEndsAndClamping) {
  EXPECT_EQ(RouteColor(0.0), (Rgb{68, 1, 84}));
  EXPECT_EQ(RouteColor(1.0), (Rgb{253, 231, 37}));
  EXPECT_EQ(RouteColor(0.5), (Rgb{33, 145, 140}));
  EXPECT_EQ(RouteColor(-3.0), RouteColor(0.0));
  EXPECT_EQ(RouteColor(7.0), RouteColor(1.0));
  // Brightness grows along the scale, so larger weights read as lighter cells.
  auto brightness = [](const Rgb& c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; };
  for (double f = 0.0; f < 1.0; f += 0.05) {
    EXPECT_LT(brightness(RouteColor(f)), brightness(RouteColor(f + 0.05))) << f;
  }
}

TEST(RouteTableTest, EncoderDecoderLayerLabels) {
  EXPECT_EQ(EncoderDecoderLayerLabels(2, 1), (std::vector<std::string>{"enc0", "enc1", "dec0"}));
}

}  // namespace
}  // namespace taskmoe
