#include "moe/drawing/plot_axes.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace taskmoe::drawing_internal {

AxisTicks NiceTicks(double low, double high, int target) {
  if (high < low) std::swap(low, high);
  if (high == low) {
    const double half_width = std::max(std::abs(low) * 0.1, 0.5);
    low -= half_width;
    high += half_width;
  }
  const double raw_step = (high - low) / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw_step)));
  double step = 10 * magnitude;
  for (const double factor : {1.0, 2.0, 5.0}) {
    if (factor * magnitude >= raw_step * (1 - 1e-9)) {
      step = factor * magnitude;
      break;
    }
  }
  AxisTicks axis;
  // Rounding slack so that a bound on a tick does not add a tick beyond it.
  const double first = std::floor(low / step + 1e-9);
  const double last = std::ceil(high / step - 1e-9);
  for (double i = first; i <= last; ++i) axis.ticks.push_back(i * step);
  axis.low = axis.ticks.front();
  axis.high = axis.ticks.back();
  axis.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return axis;
}

std::string FormatTick(double value, int decimals) {
  std::string text = absl::StrFormat("%.*f", decimals, value);
  if (text.find_first_not_of("-0.") == std::string::npos && text[0] == '-') text.erase(0, 1);
  return text;
}

Rgb SeriesColor(size_t index) {
  static constexpr Rgb kPalette[] = {{0, 114, 178}, {213, 94, 0},    {0, 158, 115},
                                     {230, 159, 0}, {204, 121, 167}, {86, 180, 233},
                                     {0, 0, 0},     {240, 228, 66}};
  return kPalette[index % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

}  // namespace taskmoe::drawing_internal
