#ifndef TASKMOE_MOE_DRAWING_ROUTE_MAP_H_
#define TASKMOE_MOE_DRAWING_ROUTE_MAP_H_

// The route heatmap: one row per task, grouped by ontology category and sub-category, one
// column per (layer, expert), the colour of a cell being the task's route weight for that
// expert. Drawn with cairo into a PNG (or pixels, for route_gif.h) so routes of a run can be
// compared at a glance. It takes plain tables; moe/train/run_outputs.h makes them from route
// tensors and CrossFit ontologies.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/drawing/rgb.h"

namespace taskmoe {

// Route weights of every task, float32 [tasks, layers, experts] in row-major order (the
// layout of routes.npy).
struct RouteTable {
  std::vector<float> values;
  int64_t tasks = 0;
  int64_t layers = 0;
  int64_t experts = 0;
};

// "enc0".."enc{n-1}", "dec0".."dec{m-1}": the labels of an encoder-decoder's layers in the
// order routes.npy stores them.
std::vector<std::string> EncoderDecoderLayerLabels(int64_t encoder_layers,
                                                   int64_t decoder_layers);

// One sub-category of an ontology category with its tasks, in display order.
struct RouteSubcategory {
  std::string name;
  std::vector<std::string> tasks;
};

// One ontology category: its sub-categories, each drawn as a thinner labelled band inside the
// category's band, then the tasks it lists outside any sub-category.
struct RouteCategory {
  std::string name;
  std::vector<std::string> tasks;  // outside any sub-category; shown after the sub-categories
  std::vector<RouteSubcategory> subcategories;
};

// Label of the group that collects tasks listed in no category; it comes last.
inline constexpr char kUnlistedCategory[] = "other";

struct RouteMapOptions {
  int cell_width = 8;    // pixels per expert column, more where a layer's label needs it
  int cell_height = 14;  // pixels per task row
  // Values mapped to the two ends of the colour scale; values outside are clamped. Route
  // weights are probabilities, hence [0, 1], which keeps images of different steps comparable.
  double value_min = 0.0;
  double value_max = 1.0;
  std::string title;  // drawn above the grid when not empty
};

// Colour of `fraction` (0 = value_min, 1 = value_max, clamped) on the heatmap's scale, a
// perceptually ordered dark-blue -> green -> yellow ramp (viridis anchors).
Rgb RouteColor(double fraction);

// Where everything goes in the image.
struct RouteMapLayout {
  struct Group {
    std::string name;
    int first_row = 0;  // index into row_task
    int rows = 0;
  };
  int width = 0;
  int height = 0;
  // Table row (task index) shown in each display row, top to bottom: the ontology's tasks
  // category by category (sub-category by sub-category inside it), then the unlisted ones in
  // table order. Each table task appears once, where the ontology lists it first.
  std::vector<int64_t> row_task;
  std::vector<Group> groups;     // categories, top to bottom; empty ones are left out
  std::vector<Group> subgroups;  // sub-categories, top to bottom, each inside one group
  std::vector<int> row_top;      // y of each display row's top edge
  int grid_left = 0;  // x of the first column's left edge
  int grid_top = 0;   // y of the first row's top edge
  int cell_width = 0;
  int cell_height = 0;
  int layer_gap = 0;     // separator width between layers
  int group_gap = 0;     // separator height between categories
  int subgroup_gap = 0;  // separator height between sub-categories of one category
  int64_t layers = 0;
  int64_t experts = 0;

  // Left/top pixel of the cell for display row `row`, `layer` and `expert`.
  int CellX(int64_t layer, int64_t expert) const;
  int CellY(int row) const { return row_top[row]; }
};

// Validates the inputs and computes the layout. `layer_labels` has one label per layer
// (e.g. "enc0".."dec5"); empty means "0", "1", ... Errors name the mismatching sizes.
absl::StatusOr<RouteMapLayout> LayoutRouteMap(const RouteTable& routes,
                                              const std::vector<std::string>& task_names,
                                              const std::vector<RouteCategory>& categories,
                                              const std::vector<std::string>& layer_labels,
                                              const RouteMapOptions& options = {});

// Pixels of a drawn route map, row by row from the top.
struct RouteMapImage {
  int width = 0;
  int height = 0;
  std::vector<Rgb> pixels;
  const Rgb& At(int x, int y) const { return pixels[static_cast<size_t>(y) * width + x]; }
};

// Draws the heatmap (the image WriteRouteMapPng writes) into pixels.
absl::StatusOr<RouteMapImage> RenderRouteMap(const RouteTable& routes,
                                             const std::vector<std::string>& task_names,
                                             const std::vector<RouteCategory>& categories,
                                             const std::vector<std::string>& layer_labels,
                                             const RouteMapOptions& options = {});

// Every flat colour a route map paints besides the colour scale (RouteColor) and the greys of
// anti-aliased black text: background, separators, bands, missing weights. A palette for the
// map (route_gif.h) holds these exactly.
std::vector<Rgb> RouteMapFlatColors();

// Draws the heatmap and writes it to `png_path` through a temporary file and a rename, so
// an existing image is replaced whole or not at all.
absl::Status WriteRouteMapPng(const RouteTable& routes,
                              const std::vector<std::string>& task_names,
                              const std::vector<RouteCategory>& categories,
                              const std::vector<std::string>& layer_labels,
                              const std::string& png_path, const RouteMapOptions& options = {});

}  // namespace taskmoe

#endif  // TASKMOE_MOE_DRAWING_ROUTE_MAP_H_
