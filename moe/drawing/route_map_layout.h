#ifndef TASKMOE_MOE_DRAWING_ROUTE_MAP_LAYOUT_H_
#define TASKMOE_MOE_DRAWING_ROUTE_MAP_LAYOUT_H_

// Sizes and positions of everything in a route map, shared by its layout and its drawing.
// Internal to moe/drawing; LayoutRouteMap (route_map.h) is the public view.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moe/drawing/route_map.h"

namespace taskmoe::drawing_internal {

inline constexpr int kMargin = 8;
inline constexpr int kPad = 6;
inline constexpr double kLabelFontSize = 11;
inline constexpr double kSubLabelFontSize = 10;
inline constexpr double kTitleFontSize = 13;
inline constexpr int kLabelLineHeight = 16;
inline constexpr int kTitleLineHeight = 20;
inline constexpr int kLegendBarWidth = 14;
inline constexpr int kLegendMinHeight = 60;
inline constexpr int kLegendMaxHeight = 240;
inline constexpr char kCaption[] = "columns: the experts of each layer; colour: route weight";

// A colour-scale value as the legend prints it.
std::string FormatScaleValue(double value);

// The labels drawn above the layers: `labels`, or "0", "1", ... when it is empty.
std::vector<std::string> LayerLabelsOrIndices(const std::vector<std::string>& labels,
                                              int64_t layers);

// The pieces of the layout that only drawing needs.
struct Geometry {
  int band_left = 0;
  int subband_left = 0;
  int task_label_right = 0;
  int layer_label_baseline = 0;
  int title_baseline = 0;
  int grid_width = 0;
  int grid_height = 0;
  int legend_left = 0;
  int legend_top = 0;
  int legend_height = 0;
  int caption_baseline = 0;
};

// Validates the inputs and computes the layout and the geometry of the drawing.
absl::StatusOr<RouteMapLayout> ComputeLayout(const RouteTable& routes,
                                             const std::vector<std::string>& task_names,
                                             const std::vector<RouteCategory>& categories,
                                             const std::vector<std::string>& layer_labels,
                                             const RouteMapOptions& options,
                                             Geometry& geometry);

}  // namespace taskmoe::drawing_internal

#endif  // TASKMOE_MOE_DRAWING_ROUTE_MAP_LAYOUT_H_
