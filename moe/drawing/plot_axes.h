#ifndef TASKMOE_MOE_DRAWING_PLOT_AXES_H_
#define TASKMOE_MOE_DRAWING_PLOT_AXES_H_

// What the line and forest plots share: tick positions, tick labels, the data-to-pixel map of
// an axis, the series colours and the type sizes. Internal to moe/drawing.

#include <cstddef>
#include <string>
#include <vector>

#include "moe/drawing/rgb.h"

namespace taskmoe::drawing_internal {

inline constexpr int kPlotMargin = 10;
inline constexpr double kPlotFontSize = 11;
inline constexpr double kPlotTitleFontSize = 13;
inline constexpr int kPlotLineHeight = 16;
inline constexpr int kPlotTitleHeight = 22;
inline constexpr int kMinPlotArea = 40;  // pixels each way the data area needs at least
inline constexpr Rgb kPlotBackground = {255, 255, 255};
inline constexpr Rgb kGridColor = {225, 225, 225};
inline constexpr Rgb kAxisColor = {90, 90, 90};
inline constexpr Rgb kMutedTextColor = {120, 120, 120};

// An axis rounded out to ticks at 1, 2 or 5 times a power of ten.
struct AxisTicks {
  double low = 0;   // the first tick: the axis starts here
  double high = 1;  // the last tick: the axis ends here
  std::vector<double> ticks;
  int decimals = 0;  // digits after the point that tell the ticks apart
};

// Ticks covering [low, high] with about `target` intervals; a range of one value is widened
// around it. `low` and `high` must be finite.
AxisTicks NiceTicks(double low, double high, int target);

// `value` with `decimals` digits after the point; never "-0".
std::string FormatTick(double value, int decimals);

// A linear map from data values to pixels.
struct AxisScale {
  double data_low = 0;
  double data_high = 1;
  double pixel_low = 0;
  double pixel_high = 1;
  double operator()(double value) const {
    return pixel_low + (value - data_low) / (data_high - data_low) * (pixel_high - pixel_low);
  }
};

// The `index`-th series colour: the Okabe-Ito palette (told apart with colour-blind eyes too),
// repeating after eight.
Rgb SeriesColor(size_t index);

}  // namespace taskmoe::drawing_internal

#endif  // TASKMOE_MOE_DRAWING_PLOT_AXES_H_
