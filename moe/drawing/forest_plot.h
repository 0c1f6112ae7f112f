#ifndef TASKMOE_MOE_DRAWING_FOREST_PLOT_H_
#define TASKMOE_MOE_DRAWING_FOREST_PLOT_H_

// Forest plots: one row per estimate (a comparison's gain, an arm's correlation) drawn as a
// point with its interval as a whisker, against a dashed line at the no-effect value, with the
// row's label on the left and its numbers on the right. Drawn with cairo into a PNG.

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace taskmoe {

struct ForestRow {
  std::string label;
  double estimate = std::numeric_limits<double>::quiet_NaN();  // NaN: drawn as "undefined"
  double low = std::numeric_limits<double>::quiet_NaN();       // NaN ends: no whisker
  double high = std::numeric_limits<double>::quiet_NaN();
  std::string value_text;  // printed right of the plot, e.g. "+2.96 [+0.59, +5.59]"
  size_t color = 0;        // index of the series colour of the marker and whisker
};

struct ForestPlot {
  std::string title;  // drawn above the rows when not empty
  std::string axis_label;
  double reference = 0;  // the no-effect value: a dashed vertical line
  std::vector<ForestRow> rows;
  int width = 640;  // pixels of the whole image
  int height = 0;   // 0: ForestPlotHeight(*this)
};

// The height that gives every row 22 pixels.
int ForestPlotHeight(const ForestPlot& plot);

// The PNG bytes of `plot`, exactly width x height pixels. Errors: no rows, an image too small
// for its rows and labels.
absl::StatusOr<std::string> ForestPlotPng(const ForestPlot& plot);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_DRAWING_FOREST_PLOT_H_
