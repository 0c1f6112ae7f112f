#ifndef TASKMOE_MOE_DRAWING_LINE_PLOT_H_
#define TASKMOE_MOE_DRAWING_LINE_PLOT_H_

// Line plots of a few series against a shared x axis (loss and performance curves over training
// steps), drawn with cairo into a PNG. Axes are rounded out to round ticks; each series gets a
// colour and a legend entry.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace taskmoe {

struct PlotSeries {
  std::string name;  // its legend entry; no legend when every name is empty
  std::vector<double> x;
  std::vector<double> y;  // a non-finite value leaves a gap in the line
  bool dashed = false;
};

struct LinePlot {
  std::string title;  // drawn above the plot when not empty
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  int width = 640;  // pixels of the whole image
  int height = 320;
};

// The PNG bytes of `plot`, exactly width x height pixels. Errors: a series whose x and y differ
// in length, no finite point at all, an image too small for its labels.
absl::StatusOr<std::string> LinePlotPng(const LinePlot& plot);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_DRAWING_LINE_PLOT_H_
