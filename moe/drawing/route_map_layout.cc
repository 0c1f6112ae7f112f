#include "moe/drawing/route_map_layout.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/cairo_canvas.h"

namespace taskmoe {
namespace drawing_internal {
namespace {

std::vector<std::string> GroupNames(const std::vector<RouteMapLayout::Group>& groups) {
  std::vector<std::string> names;
  for (const RouteMapLayout::Group& group : groups) names.push_back(group.name);
  return names;
}

absl::Status ValidateInputs(const RouteTable& routes, const std::vector<std::string>& task_names,
                            const std::vector<std::string>& layer_labels,
                            const RouteMapOptions& options) {
  if (routes.tasks <= 0 || routes.layers <= 0 || routes.experts <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("routes have shape [", routes.tasks, ", ", routes.layers, ", ",
                     routes.experts, "]; expected [tasks, layers, experts], all positive"));
  }
  const int64_t expected = routes.tasks * routes.layers * routes.experts;
  if (static_cast<int64_t>(routes.values.size()) != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "routes hold ", routes.values.size(), " values; shape [", routes.tasks, ", ",
        routes.layers, ", ", routes.experts, "] needs ", expected));
  }
  if (static_cast<int64_t>(task_names.size()) != routes.tasks) {
    return absl::InvalidArgumentError(absl::StrCat("routes have ", routes.tasks,
                                                   " task rows but ", task_names.size(),
                                                   " task names were given"));
  }
  if (!layer_labels.empty() && static_cast<int64_t>(layer_labels.size()) != routes.layers) {
    return absl::InvalidArgumentError(absl::StrCat("routes have ", routes.layers,
                                                   " layers but ", layer_labels.size(),
                                                   " layer labels were given"));
  }
  if (!(options.value_max > options.value_min)) {
    return absl::InvalidArgumentError(absl::StrCat("colour scale [", options.value_min, ", ",
                                                   options.value_max, "] is empty"));
  }
  if (options.cell_width <= 0 || options.cell_height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("cell size ", options.cell_width, "x",
                                                   options.cell_height, " must be positive"));
  }
  return absl::OkStatus();
}

// Rows grouped by category, and by sub-category inside it: each table task once, where the
// categories list it first.
void GroupRows(const std::vector<std::string>& task_names,
               const std::vector<RouteCategory>& categories, RouteMapLayout& layout) {
  std::map<std::string, int64_t> row_of_name;
  for (int64_t i = static_cast<int64_t>(task_names.size()) - 1; i >= 0; --i) {
    row_of_name[task_names[i]] = i;  // the first row wins for duplicate names
  }
  std::vector<bool> placed(task_names.size(), false);
  // Appends the table rows of `tasks` not placed yet; returns how many.
  auto place = [&](const std::vector<std::string>& tasks) {
    int added = 0;
    for (const std::string& task : tasks) {
      auto it = row_of_name.find(task);
      if (it == row_of_name.end() || placed[it->second]) continue;
      placed[it->second] = true;
      layout.row_task.push_back(it->second);
      ++added;
    }
    return added;
  };
  auto next_row = [&] { return static_cast<int>(layout.row_task.size()); };
  for (const RouteCategory& category : categories) {
    const int first_row = next_row();
    for (const RouteSubcategory& sub : category.subcategories) {
      const int sub_first_row = next_row();
      const int rows = place(sub.tasks);
      if (rows > 0) layout.subgroups.push_back({sub.name, sub_first_row, rows});
    }
    place(category.tasks);
    if (next_row() > first_row) {
      layout.groups.push_back({category.name, first_row, next_row() - first_row});
    }
  }
  std::vector<std::string> unlisted;
  for (int64_t i = 0; i < static_cast<int64_t>(task_names.size()); ++i) {
    if (!placed[i]) unlisted.push_back(task_names[i]);
  }
  const int first_unlisted = next_row();
  if (place(unlisted) > 0) {
    layout.groups.push_back({kUnlistedCategory, first_unlisted, next_row() - first_unlisted});
  }
}


// The rows' y positions: a separator before each category but the first, and a thinner one
// wherever a sub-category starts or ends inside a category.
void PlaceRows(RouteMapLayout& layout) {
  std::vector<int> gap_before(layout.row_task.size(), 0);
  for (const RouteMapLayout::Group& sub : layout.subgroups) {
    gap_before[sub.first_row] = layout.subgroup_gap;
    const size_t next = sub.first_row + sub.rows;
    if (next < gap_before.size()) gap_before[next] = layout.subgroup_gap;
  }
  for (const RouteMapLayout::Group& group : layout.groups) {
    gap_before[group.first_row] = layout.group_gap;
  }
  gap_before[0] = 0;
  int y = layout.grid_top;
  for (size_t row = 0; row < gap_before.size(); ++row) {
    y += gap_before[row];
    layout.row_top.push_back(y);
    y += layout.cell_height;
  }
}

// Widths of the texts around the grid, measured with the fonts used for drawing.
struct TextWidths {
  int category = 0;
  int subcategory = 0;
  int task = 0;
  int layer_label = 0;
  int scale_values = 0;
  int caption = 0;
  int title = 0;
};

TextWidths MeasureTexts(const RouteMapLayout& layout, const std::vector<std::string>& task_names,
                        const std::vector<std::string>& layer_labels,
                        const RouteMapOptions& options) {
  SurfacePtr scratch(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1));
  ContextPtr cr(cairo_create(scratch.get()));
  TextWidths widths;
  SetFont(cr.get(), kLabelFontSize, /*bold=*/true);
  widths.category = MaxTextWidth(cr.get(), GroupNames(layout.groups));
  SetFont(cr.get(), kSubLabelFontSize, /*bold=*/false);
  widths.subcategory = MaxTextWidth(cr.get(), GroupNames(layout.subgroups));
  SetFont(cr.get(), kLabelFontSize, /*bold=*/false);
  widths.task = MaxTextWidth(cr.get(), task_names);
  widths.layer_label = MaxTextWidth(cr.get(), LayerLabelsOrIndices(layer_labels, layout.layers));
  widths.scale_values = MaxTextWidth(
      cr.get(), {FormatScaleValue(options.value_min), FormatScaleValue(options.value_max),
                 FormatScaleValue((options.value_min + options.value_max) / 2)});
  widths.caption = MaxTextWidth(cr.get(), {kCaption});
  SetFont(cr.get(), kTitleFontSize, /*bold=*/true);
  widths.title = MaxTextWidth(cr.get(), {options.title});
  return widths;
}

}  // namespace

std::string FormatScaleValue(double value) { return absl::StrFormat("%.3g", value); }

std::vector<std::string> LayerLabelsOrIndices(const std::vector<std::string>& labels,
                                              int64_t layers) {
  if (!labels.empty()) return labels;
  std::vector<std::string> indices;
  for (int64_t i = 0; i < layers; ++i) indices.push_back(absl::StrCat(i));
  return indices;
}

absl::StatusOr<RouteMapLayout> ComputeLayout(const RouteTable& routes,
                                             const std::vector<std::string>& task_names,
                                             const std::vector<RouteCategory>& categories,
                                             const std::vector<std::string>& layer_labels,
                                             const RouteMapOptions& options,
                                             Geometry& geometry) {
  TASKMOE_RETURN_IF_ERROR(ValidateInputs(routes, task_names, layer_labels, options));
  RouteMapLayout layout;
  layout.layers = routes.layers;
  layout.experts = routes.experts;
  layout.cell_height = options.cell_height;
  layout.layer_gap = 2;
  layout.group_gap = 2;
  layout.subgroup_gap = 1;
  GroupRows(task_names, categories, layout);
  const TextWidths widths = MeasureTexts(layout, task_names, layer_labels, options);
  // Columns widen when a layer's label would not fit above its experts.
  const int64_t label_cell_width =
      (widths.layer_label + kPad + routes.experts - 1) / routes.experts;
  layout.cell_width = static_cast<int>(std::max<int64_t>(options.cell_width, label_cell_width));

  // Columns left of the grid: category labels, sub-category labels (when there are any), task
  // names (right-aligned).
  geometry.band_left = kMargin;
  geometry.subband_left = geometry.band_left + widths.category + kPad;
  const int subband_width = layout.subgroups.empty() ? 0 : widths.subcategory + kPad;
  geometry.task_label_right = geometry.subband_left + subband_width + kPad + widths.task;
  layout.grid_left = geometry.task_label_right + kPad;
  int top = kMargin;
  if (!options.title.empty()) {
    geometry.title_baseline = top + kTitleLineHeight - 6;
    top += kTitleLineHeight;
  }
  geometry.layer_label_baseline = top + kLabelLineHeight - 4;
  layout.grid_top = top + kLabelLineHeight + 2;
  PlaceRows(layout);

  geometry.grid_width = static_cast<int>(routes.layers * routes.experts * layout.cell_width +
                                         (routes.layers - 1) * layout.layer_gap);
  geometry.grid_height = layout.row_top.back() + layout.cell_height - layout.grid_top;
  geometry.legend_left = layout.grid_left + geometry.grid_width + 2 * kPad;
  geometry.legend_top = layout.grid_top + kLabelLineHeight / 2;
  geometry.legend_height =
      std::clamp(geometry.grid_height - kLabelLineHeight, kLegendMinHeight, kLegendMaxHeight);
  const int body_bottom = std::max(layout.grid_top + geometry.grid_height,
                                   geometry.legend_top + geometry.legend_height +
                                       kLabelLineHeight / 2);
  geometry.caption_baseline = body_bottom + kLabelLineHeight;
  layout.height = geometry.caption_baseline + kMargin;
  const int legend_right = geometry.legend_left + kLegendBarWidth + kPad + widths.scale_values;
  layout.width = std::max({legend_right + kMargin, layout.grid_left + widths.caption + kMargin,
                           kMargin + widths.title + kMargin});
  return layout;
}

}  // namespace drawing_internal

int RouteMapLayout::CellX(int64_t layer, int64_t expert) const {
  return grid_left + static_cast<int>(layer * (experts * cell_width + layer_gap) +
                                      expert * cell_width);
}

absl::StatusOr<RouteMapLayout> LayoutRouteMap(const RouteTable& routes,
                                              const std::vector<std::string>& task_names,
                                              const std::vector<RouteCategory>& categories,
                                              const std::vector<std::string>& layer_labels,
                                              const RouteMapOptions& options) {
  drawing_internal::Geometry geometry;
  return drawing_internal::ComputeLayout(routes, task_names, categories, layer_labels, options,
                                         geometry);
}

}  // namespace taskmoe
