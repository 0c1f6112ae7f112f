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

// "qa" has two sub-categories (task_e is listed in both and stays in the first) and a task
// outside them; "classification" has one sub-category; task_c is listed nowhere.
const std::vector<RouteCategory> kSubCategories = {
    {"qa",
     {"task_b"},
     {{"extractive", {"task_d", "task_e"}}, {"multiple choice", {"task_e", "task_a", "nowhere"}}}},
    {"classification", {}, {{"empty", {"nowhere"}}, {"sentiment", {"task_f"}}}},
};
const std::vector<std::string> kSixTasks = {"task_a", "task_b", "task_c",
                                            "task_d", "task_e", "task_f"};

TEST(RouteMapLayoutTest, SubCategoriesGroupRowsInsideTheirCategory) {
  absl::StatusOr<RouteMapLayout> layout =
      LayoutRouteMap(OneHotRoutes(6, 2, 3), kSixTasks, kSubCategories, {});
  ASSERT_TRUE(layout.ok()) << layout.status();
  // qa: extractive (d, e), multiple choice (a), then b; classification: sentiment (f); other: c.
  EXPECT_EQ(layout->row_task, (std::vector<int64_t>{3, 4, 0, 1, 5, 2}));
  ASSERT_EQ(layout->groups.size(), 3u);
  EXPECT_EQ(layout->groups[0].name, "qa");
  EXPECT_EQ(layout->groups[0].rows, 4);
  EXPECT_EQ(layout->groups[1].name, "classification");
  EXPECT_EQ(layout->groups[1].first_row, 4);
  EXPECT_EQ(layout->groups[2].name, kUnlistedCategory);
  ASSERT_EQ(layout->subgroups.size(), 3u);  // the empty sub-category is left out
  EXPECT_EQ(layout->subgroups[0].name, "extractive");
  EXPECT_EQ(layout->subgroups[0].first_row, 0);
  EXPECT_EQ(layout->subgroups[0].rows, 2);
  EXPECT_EQ(layout->subgroups[1].name, "multiple choice");
  EXPECT_EQ(layout->subgroups[1].first_row, 2);
  EXPECT_EQ(layout->subgroups[1].rows, 1);
  EXPECT_EQ(layout->subgroups[2].name, "sentiment");
  EXPECT_EQ(layout->subgroups[2].first_row, 4);
  // A thin separator between sub-categories and before the category's own tasks, the thick
  // one between categories, none inside a sub-category.
  const int h = layout->cell_height;
  EXPECT_GT(layout->subgroup_gap, 0);
  EXPECT_LT(layout->subgroup_gap, layout->group_gap);
  EXPECT_EQ(layout->CellY(1) - layout->CellY(0), h);
  EXPECT_EQ(layout->CellY(2) - layout->CellY(1), h + layout->subgroup_gap);
  EXPECT_EQ(layout->CellY(3) - layout->CellY(2), h + layout->subgroup_gap);
  EXPECT_EQ(layout->CellY(4) - layout->CellY(3), h + layout->group_gap);
  EXPECT_EQ(layout->CellY(5) - layout->CellY(4), h + layout->group_gap);
}

TEST(RouteMapLayoutTest, ColumnsWidenToFitTheLayerLabels) {
  RouteMapOptions options;
  options.cell_width = 4;
  absl::StatusOr<RouteMapLayout> narrow =
      LayoutRouteMap(OneHotRoutes(5, 2, 8), kTasks, {}, {"a", "b"}, options);
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  EXPECT_EQ(narrow->cell_width, 4);  // "a" fits above 8 columns of 4 pixels
  absl::StatusOr<RouteMapLayout> wide = LayoutRouteMap(
      OneHotRoutes(5, 2, 2), kTasks, {}, {"encoder_layer_0", "decoder_layer_0"}, options);
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_GT(wide->cell_width, 20);  // two columns hold a 15-character label
  EXPECT_EQ(wide->CellX(1, 0) - wide->CellX(0, 0), 2 * wide->cell_width + wide->layer_gap);
}

TEST(RouteMapLayoutTest, WithoutOntologyEveryTaskIsUnlisted) {
  absl::StatusOr<RouteMapLayout> layout = LayoutRouteMap(OneHotRoutes(5, 1, 2), kTasks, {}, {});
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->row_task, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  ASSERT_EQ(layout->groups.size(), 1u);
  EXPECT_EQ(layout->groups[0].name, kUnlistedCategory);
  EXPECT_TRUE(layout->subgroups.empty());
}

RouteMapImage ReadPng(const std::string& path) {
  cairo_surface_t* surface = cairo_image_surface_create_from_png(path.c_str());
  RouteMapImage image;
  if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
    image.width = cairo_image_surface_get_width(surface);
    image.height = cairo_image_surface_get_height(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    for (int y = 0; y < image.height; ++y) {
      const uint32_t* row = reinterpret_cast<const uint32_t*>(data + y * stride);
      for (int x = 0; x < image.width; ++x) {
        image.pixels.push_back({static_cast<uint8_t>(row[x] >> 16),
                                static_cast<uint8_t>(row[x] >> 8), static_cast<uint8_t>(row[x])});
      }
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
  const RouteMapImage image = ReadPng(path);
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

bool IsFlatColor(const Rgb& color) {
  const std::vector<Rgb> flat = RouteMapFlatColors();
  return std::find(flat.begin(), flat.end(), color) != flat.end();
}

TEST(RouteMapPngTest, SubCategoryBandsAndSeparators) {
  const RouteTable routes = OneHotRoutes(6, 2, 3);
  const std::string path = TempPath("subcategories.png");
  ASSERT_TRUE(WriteRouteMapPng(routes, kSixTasks, kSubCategories, {}, path).ok());
  absl::StatusOr<RouteMapLayout> layout = LayoutRouteMap(routes, kSixTasks, kSubCategories, {});
  ASSERT_TRUE(layout.ok()) << layout.status();
  const RouteMapImage image = ReadPng(path);
  ASSERT_EQ(image.width, layout->width);
  ASSERT_EQ(image.height, layout->height);

  // The sub-category band reaches the grid's left edge, beyond the right-aligned task names;
  // the category band starts at the left margin, before its label.
  const int sub_band_x = layout->grid_left - 2;
  auto sub_band = [&](int row) { return image.At(sub_band_x, layout->CellY(row)); };
  auto category_band = [&](int row) { return image.At(9, layout->CellY(row)); };
  for (int row = 0; row < 6; ++row) EXPECT_TRUE(IsFlatColor(sub_band(row))) << row;
  EXPECT_EQ(sub_band(0), sub_band(1));           // one sub-category
  EXPECT_FALSE(sub_band(1) == sub_band(2));      // the next one is shaded differently
  EXPECT_EQ(sub_band(3), category_band(3));      // qa's own task: no sub-category band
  EXPECT_FALSE(sub_band(0) == category_band(0));
  EXPECT_EQ(category_band(0), category_band(3));
  EXPECT_FALSE(category_band(3) == category_band(4));  // categories alternate colours
  EXPECT_FALSE(sub_band(4) == category_band(4));

  // Separators run across the grid: thin between sub-categories, thick between categories.
  const int cell_x = layout->CellX(0, 0);
  const Rgb thin = image.At(cell_x, layout->CellY(2) - 1);
  const Rgb thick = image.At(cell_x, layout->CellY(4) - 1);
  EXPECT_TRUE(IsFlatColor(thin));
  EXPECT_TRUE(IsFlatColor(thick));
  EXPECT_FALSE(thin == thick);
  EXPECT_FALSE(thin == (Rgb{255, 255, 255}));
  EXPECT_EQ(image.At(cell_x, layout->CellY(3) - 1), thin);
  // ...and never over a cell: every cell keeps its route colour.
  for (int row = 0; row < 6; ++row) {
    const int64_t task = layout->row_task[row];
    for (int64_t l = 0; l < 2; ++l) {
      for (int64_t e = 0; e < 3; ++e) {
        const Rgb expected = RouteColor(e == (task + l) % 3 ? 1.0 : 0.0);
        EXPECT_EQ(image.At(layout->CellX(l, e), layout->CellY(row)), expected);
        EXPECT_EQ(image.At(layout->CellX(l, e) + layout->cell_width - 1,
                           layout->CellY(row) + layout->cell_height - 1),
                  expected);
      }
    }
  }
}

TEST(RouteMapRenderTest, PixelsAreThoseOfThePng) {
  const RouteTable routes = OneHotRoutes(6, 2, 3, /*uniform_tasks=*/{1});
  RouteMapOptions options;
  options.title = "step 7";
  const std::string path = TempPath("rendered.png");
  ASSERT_TRUE(WriteRouteMapPng(routes, kSixTasks, kSubCategories, {"a", "b"}, path, options).ok());
  absl::StatusOr<RouteMapImage> rendered =
      RenderRouteMap(routes, kSixTasks, kSubCategories, {"a", "b"}, options);
  ASSERT_TRUE(rendered.ok()) << rendered.status();
  const RouteMapImage png = ReadPng(path);
  EXPECT_EQ(rendered->width, png.width);
  EXPECT_EQ(rendered->height, png.height);
  EXPECT_TRUE(rendered->pixels == png.pixels);

  RouteTable bad = routes;
  bad.values.pop_back();
  EXPECT_EQ(RenderRouteMap(bad, kSixTasks, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
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
