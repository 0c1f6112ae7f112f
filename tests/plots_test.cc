// Line and forest plots (moe/drawing): PNGs of the requested size that decode, show their
// series, place estimates in order along the axis, and reject what they cannot draw; the axis
// ticks against hand-worked ranges.
#include <cairo/cairo.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moe/drawing/forest_plot.h"
#include "moe/drawing/line_plot.h"
#include "moe/drawing/plot_axes.h"

namespace taskmoe {
namespace {

using drawing_internal::AxisTicks;
using drawing_internal::FormatTick;
using drawing_internal::NiceTicks;
using drawing_internal::SeriesColor;

// A decoded PNG: its size and opaque pixels, row by row.
struct Decoded {
  int width = 0;
  int height = 0;
  std::vector<Rgb> pixels;
  const Rgb& At(int x, int y) const { return pixels[static_cast<size_t>(y) * width + x]; }
};

struct PngReader {
  const std::string* bytes;
  size_t offset = 0;
};

Decoded DecodePng(const std::string& png) {
  PngReader reader{&png};
  cairo_surface_t* surface = cairo_image_surface_create_from_png_stream(
      [](void* closure, unsigned char* data, unsigned int length) {
        auto* r = static_cast<PngReader*>(closure);
        if (r->offset + length > r->bytes->size()) return CAIRO_STATUS_READ_ERROR;
        std::copy_n(r->bytes->data() + r->offset, length, data);
        r->offset += length;
        return CAIRO_STATUS_SUCCESS;
      },
      &reader);
  Decoded image;
  EXPECT_EQ(cairo_surface_status(surface), CAIRO_STATUS_SUCCESS);
  if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
    image.width = cairo_image_surface_get_width(surface);
    image.height = cairo_image_surface_get_height(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    for (int y = 0; y < image.height; ++y) {
      const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
      for (int x = 0; x < image.width; ++x) {
        image.pixels.push_back({static_cast<uint8_t>(row[x] >> 16),
                                static_cast<uint8_t>(row[x] >> 8), static_cast<uint8_t>(row[x])});
      }
    }
  }
  cairo_surface_destroy(surface);
  return image;
}

int CountColor(const Decoded& image, const Rgb& color) {
  int count = 0;
  for (const Rgb& pixel : image.pixels) count += pixel == color;
  return count;
}

// Mean x of the pixels of `color` in rows [top, bottom).
double MeanX(const Decoded& image, const Rgb& color, int top, int bottom) {
  double sum = 0;
  int count = 0;
  for (int y = top; y < bottom; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (image.At(x, y) == color) {
        sum += x;
        ++count;
      }
    }
  }
  return count > 0 ? sum / count : -1;
}

LinePlot Curves() {
  LinePlot plot;
  plot.title = "losses";
  plot.x_label = "step";
  plot.y_label = "loss per token";
  plot.series = {{"train", {500, 1000, 1500}, {3.07, 2.34, 2.26}},
                 {"dev", {500, 1000, 1500}, {2.39, 2.29, 2.22}, /*dashed=*/true}};
  plot.width = 520;
  plot.height = 300;
  return plot;
}

TEST(PlotAxesTest, TicksAreRoundAndCoverTheRange) {
  AxisTicks axis = NiceTicks(0, 1, 5);
  EXPECT_EQ(axis.ticks, (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(axis.decimals, 1);
  axis = NiceTicks(2.08, 3.07, 5);  // step 0.2: 2.0 .. 3.2
  ASSERT_EQ(axis.ticks.size(), 7u);
  EXPECT_DOUBLE_EQ(axis.low, 2.0);
  EXPECT_DOUBLE_EQ(axis.high, 3.2);
  axis = NiceTicks(500, 3000, 6);  // step 500
  EXPECT_EQ(axis.ticks, (std::vector<double>{500, 1000, 1500, 2000, 2500, 3000}));
  EXPECT_EQ(axis.decimals, 0);
  axis = NiceTicks(-5.23, 6.72, 5);  // step 5: -10 .. 10
  EXPECT_EQ(axis.ticks, (std::vector<double>{-10, -5, 0, 5, 10}));
  axis = NiceTicks(4, 4, 5);  // one value: widened to [3.5, 4.5]
  EXPECT_LE(axis.low, 3.5);
  EXPECT_GE(axis.high, 4.5);
  EXPECT_GT(axis.ticks.size(), 1u);
}

TEST(PlotAxesTest, TickLabels) {
  EXPECT_EQ(FormatTick(0.6000000000000001, 1), "0.6");
  EXPECT_EQ(FormatTick(-1e-12, 2), "0.00");
  EXPECT_EQ(FormatTick(-5, 0), "-5");
  EXPECT_EQ(FormatTick(2500, 0), "2500");
}

TEST(LinePlotTest, ImageOfTheRequestedSizeShowsEverySeries) {
  const absl::StatusOr<std::string> png = LinePlotPng(Curves());
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_EQ(png->substr(0, 8), "\x89PNG\r\n\x1a\n");
  const Decoded image = DecodePng(*png);
  EXPECT_EQ(image.width, 520);
  EXPECT_EQ(image.height, 300);
  EXPECT_EQ(image.At(0, 0), (Rgb{255, 255, 255}));
  // Both lines and their markers (and the legend swatches) in their own colours.
  EXPECT_GT(CountColor(image, SeriesColor(0)), 100);
  EXPECT_GT(CountColor(image, SeriesColor(1)), 50);
  EXPECT_EQ(CountColor(image, SeriesColor(2)), 0);
}

TEST(LinePlotTest, GapsAndSinglePointsDraw) {
  LinePlot plot = Curves();
  plot.series = {{"", {1, 2, 3}, {0.5, NAN, 0.5}}};
  plot.title.clear();
  const absl::StatusOr<std::string> png = LinePlotPng(plot);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_GT(CountColor(DecodePng(*png), SeriesColor(0)), 10);
}

TEST(LinePlotTest, RejectsWhatItCannotDraw) {
  LinePlot plot = Curves();
  plot.series[1].y.pop_back();
  absl::Status status = LinePlotPng(plot).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'dev' has 3 x values and 2 y"), std::string::npos) << status;
  plot = Curves();
  plot.series = {{"empty", {1, 2}, {NAN, INFINITY}}};
  EXPECT_NE(LinePlotPng(plot).status().message().find("no series has a finite point"),
            std::string::npos);
  plot = Curves();
  plot.width = 90;
  EXPECT_NE(LinePlotPng(plot).status().message().find("leave no room"), std::string::npos);
}

ForestPlot Gains(double second_estimate) {
  ForestPlot plot;
  plot.title = "few-shot";
  plot.axis_label = "delta (points)";
  plot.rows = {{"two_stage vs dense", 3.37, 0.52, 6.72, "+3.37 [+0.52, +6.72]"},
               {"stage_one vs dense", second_estimate, second_estimate - 2, second_estimate + 2,
                "second", 1},
               {"undefined one", NAN, NAN, NAN, "undefined"}};
  plot.width = 600;
  return plot;
}

TEST(ForestPlotTest, NaturalAndRequestedHeights) {
  ForestPlot plot = Gains(-4);
  // 10 margin + 22 title + 3 rows x 22 + 4 ticks + 16 tick labels + 16 axis label + 10 margin.
  EXPECT_EQ(ForestPlotHeight(plot), 144);
  absl::StatusOr<std::string> png = ForestPlotPng(plot);
  ASSERT_TRUE(png.ok()) << png.status();
  Decoded image = DecodePng(*png);
  EXPECT_EQ(image.width, 600);
  EXPECT_EQ(image.height, 144);
  plot.height = 200;
  png = ForestPlotPng(plot);
  ASSERT_TRUE(png.ok()) << png.status();
  image = DecodePng(*png);
  EXPECT_EQ(image.height, 200);
  EXPECT_GT(CountColor(image, SeriesColor(0)), 20);  // the first row's whisker and marker
  EXPECT_GT(CountColor(image, SeriesColor(1)), 20);  // the second row's colour
}

TEST(ForestPlotTest, EstimatesSitInOrderAlongTheAxis) {
  // Row 2 (colour 1) lies in rows 32 + 22 .. 32 + 44 of the image.
  const Decoded left = DecodePng(*ForestPlotPng(Gains(-4)));
  const Decoded right = DecodePng(*ForestPlotPng(Gains(5)));
  const double left_x = MeanX(left, SeriesColor(1), 54, 76);
  const double right_x = MeanX(right, SeriesColor(1), 54, 76);
  const double first_row_x = MeanX(left, SeriesColor(0), 32, 54);
  ASSERT_GT(left_x, 0);
  ASSERT_GT(first_row_x, 0);
  EXPECT_LT(left_x, first_row_x);  // -4 left of +3.37
  EXPECT_GT(right_x, left_x);      // +5 right of -4
}

TEST(ForestPlotTest, RejectsWhatItCannotDraw) {
  ForestPlot plot = Gains(1);
  plot.rows.clear();
  EXPECT_NE(ForestPlotPng(plot).status().message().find("no rows"), std::string::npos);
  plot = Gains(1);
  plot.height = 80;  // under 12 pixels a row
  EXPECT_NE(ForestPlotPng(plot).status().message().find("leave no room for 3 rows"),
            std::string::npos);
}

}  // namespace
}  // namespace taskmoe
