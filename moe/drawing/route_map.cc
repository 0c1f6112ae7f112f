#include "moe/drawing/route_map.h"

#include <cairo/cairo.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

constexpr int kMargin = 8;
constexpr int kPad = 6;
constexpr double kLabelFontSize = 11;
constexpr double kTitleFontSize = 13;
constexpr int kLabelLineHeight = 16;
constexpr int kTitleLineHeight = 20;
constexpr int kLegendBarWidth = 14;
constexpr int kLegendMinHeight = 60;
constexpr int kLegendMaxHeight = 240;
constexpr char kFontFamily[] = "DejaVu Sans";
constexpr char kCaption[] = "columns: the experts of each layer; colour: route weight";
const Rgb kMissingColor = {128, 128, 128};  // NaN weights
const Rgb kSeparatorColor = {60, 60, 60};
const Rgb kBandColors[2] = {{232, 238, 248}, {248, 242, 228}};

struct CairoSurfaceDeleter {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
struct CairoDeleter {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, CairoSurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, CairoDeleter>;

void SetFont(cairo_t* cr, double size, bool bold) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double TextWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  return extents.x_advance;
}

void SetColor(cairo_t* cr, const Rgb& color) {
  cairo_set_source_rgb(cr, color.r / 255.0, color.g / 255.0, color.b / 255.0);
}

void FillRect(cairo_t* cr, double x, double y, double width, double height, const Rgb& color) {
  SetColor(cr, color);
  cairo_rectangle(cr, x, y, width, height);
  cairo_fill(cr);
}

// Draws `text` with its baseline at y, starting at x (align 0), centred on x (0.5) or
// ending at x (1).
void DrawText(cairo_t* cr, const std::string& text, double x, double y, double align) {
  SetColor(cr, {0, 0, 0});
  cairo_move_to(cr, x - align * TextWidth(cr, text), y);
  cairo_show_text(cr, text.c_str());
}

std::string FormatScaleValue(double value) { return absl::StrFormat("%.3g", value); }

std::vector<std::string> LabelsOrIndices(const std::vector<std::string>& labels, int64_t count) {
  if (!labels.empty()) return labels;
  std::vector<std::string> indices;
  for (int64_t i = 0; i < count; ++i) indices.push_back(absl::StrCat(i));
  return indices;
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

// Rows grouped by category: each table task once, in its first listed category.
void GroupRows(const std::vector<std::string>& task_names,
               const std::vector<RouteCategory>& categories, RouteMapLayout& layout) {
  std::map<std::string, int64_t> row_of_name;
  for (int64_t i = static_cast<int64_t>(task_names.size()) - 1; i >= 0; --i) {
    row_of_name[task_names[i]] = i;  // the first row wins for duplicate names
  }
  std::vector<bool> placed(task_names.size(), false);
  auto add_group = [&](const std::string& name, const std::vector<int64_t>& rows) {
    if (rows.empty()) return;
    layout.groups.push_back({name, static_cast<int>(layout.row_task.size()),
                             static_cast<int>(rows.size())});
    layout.row_task.insert(layout.row_task.end(), rows.begin(), rows.end());
  };
  for (const RouteCategory& category : categories) {
    std::vector<int64_t> rows;
    for (const std::string& task : category.tasks) {
      auto it = row_of_name.find(task);
      if (it == row_of_name.end() || placed[it->second]) continue;
      placed[it->second] = true;
      rows.push_back(it->second);
    }
    add_group(category.name, rows);
  }
  std::vector<int64_t> unlisted;
  for (int64_t i = 0; i < static_cast<int64_t>(task_names.size()); ++i) {
    if (!placed[i]) unlisted.push_back(i);
  }
  add_group(kUnlistedCategory, unlisted);
}

// The pieces of the layout that only drawing needs.
struct Geometry {
  int band_left = 0;
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
  layout.cell_width = options.cell_width;
  layout.cell_height = options.cell_height;
  layout.layer_gap = 2;
  layout.group_gap = 2;
  GroupRows(task_names, categories, layout);

  // Text is measured on a scratch surface with the fonts used for drawing.
  SurfacePtr scratch(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1));
  ContextPtr cr(cairo_create(scratch.get()));
  SetFont(cr.get(), kLabelFontSize, /*bold=*/true);
  double category_width = 0;
  for (const RouteMapLayout::Group& group : layout.groups) {
    category_width = std::max(category_width, TextWidth(cr.get(), group.name));
  }
  SetFont(cr.get(), kLabelFontSize, /*bold=*/false);
  double task_width = 0;
  for (const std::string& name : task_names) {
    task_width = std::max(task_width, TextWidth(cr.get(), name));
  }
  const double value_label_width =
      std::max({TextWidth(cr.get(), FormatScaleValue(options.value_min)),
                TextWidth(cr.get(), FormatScaleValue(options.value_max)),
                TextWidth(cr.get(), FormatScaleValue(
                                        (options.value_min + options.value_max) / 2))});
  const double caption_width = TextWidth(cr.get(), kCaption);
  SetFont(cr.get(), kTitleFontSize, /*bold=*/true);
  const double title_width = options.title.empty() ? 0 : TextWidth(cr.get(), options.title);

  geometry.band_left = kMargin;
  geometry.task_label_right =
      kMargin + static_cast<int>(std::ceil(category_width)) + 2 * kPad +
      static_cast<int>(std::ceil(task_width));
  layout.grid_left = geometry.task_label_right + kPad;
  int top = kMargin;
  if (!options.title.empty()) {
    geometry.title_baseline = top + kTitleLineHeight - 6;
    top += kTitleLineHeight;
  }
  geometry.layer_label_baseline = top + kLabelLineHeight - 4;
  layout.grid_top = top + kLabelLineHeight + 2;

  geometry.grid_width = static_cast<int>(routes.layers * routes.experts * options.cell_width +
                                         (routes.layers - 1) * layout.layer_gap);
  geometry.grid_height =
      static_cast<int>(layout.row_task.size()) * options.cell_height +
      (static_cast<int>(layout.groups.size()) - 1) * layout.group_gap;
  geometry.legend_left = layout.grid_left + geometry.grid_width + 2 * kPad;
  geometry.legend_top = layout.grid_top + kLabelLineHeight / 2;
  geometry.legend_height =
      std::clamp(geometry.grid_height - kLabelLineHeight, kLegendMinHeight, kLegendMaxHeight);
  const int body_bottom = std::max(layout.grid_top + geometry.grid_height,
                                   geometry.legend_top + geometry.legend_height +
                                       kLabelLineHeight / 2);
  geometry.caption_baseline = body_bottom + kLabelLineHeight;
  layout.height = geometry.caption_baseline + kMargin;
  const int legend_right = geometry.legend_left + kLegendBarWidth + kPad +
                           static_cast<int>(std::ceil(value_label_width));
  layout.width = std::max({legend_right + kMargin,
                           layout.grid_left + static_cast<int>(std::ceil(caption_width)) + kMargin,
                           kMargin + static_cast<int>(std::ceil(title_width)) + kMargin});
  return layout;
}

void Draw(cairo_t* cr, const RouteTable& routes, const std::vector<std::string>& task_names,
          const std::vector<std::string>& layer_labels, const RouteMapOptions& options,
          const RouteMapLayout& layout, const Geometry& geometry) {
  FillRect(cr, 0, 0, layout.width, layout.height, {255, 255, 255});
  const int grid_right = layout.grid_left + geometry.grid_width;

  // Category bands with their labels, task names, and the separators between categories.
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    const RouteMapLayout::Group& group = layout.groups[g];
    const int top = layout.CellY(group.first_row);
    const int height = group.rows * layout.cell_height;
    FillRect(cr, geometry.band_left, top, layout.grid_left - geometry.band_left, height,
             kBandColors[g % 2]);
    if (g > 0) {
      FillRect(cr, geometry.band_left, top - layout.group_gap, grid_right - geometry.band_left,
               layout.group_gap, kSeparatorColor);
    }
    SetFont(cr, kLabelFontSize, /*bold=*/true);
    DrawText(cr, group.name, geometry.band_left + kPad / 2,
             top + height / 2.0 + kLabelFontSize / 2 - 1, 0);
    SetFont(cr, kLabelFontSize, /*bold=*/false);
    for (int row = group.first_row; row < group.first_row + group.rows; ++row) {
      DrawText(cr, task_names[layout.row_task[row]], geometry.task_label_right,
               layout.CellY(row) + layout.cell_height / 2.0 + kLabelFontSize / 2 - 1.5, 1);
    }
  }

  // The cells.
  const double scale = options.value_max - options.value_min;
  for (int row = 0; row < static_cast<int>(layout.row_task.size()); ++row) {
    const int64_t task = layout.row_task[row];
    for (int64_t layer = 0; layer < routes.layers; ++layer) {
      for (int64_t expert = 0; expert < routes.experts; ++expert) {
        const float value =
            routes.values[(task * routes.layers + layer) * routes.experts + expert];
        const Rgb color =
            std::isnan(value) ? kMissingColor : RouteColor((value - options.value_min) / scale);
        FillRect(cr, layout.CellX(layer, expert), layout.CellY(row), layout.cell_width,
                 layout.cell_height, color);
      }
    }
  }

  // Layer separators and labels.
  const std::vector<std::string> labels = LabelsOrIndices(layer_labels, routes.layers);
  SetFont(cr, kLabelFontSize, /*bold=*/false);
  const int layer_width = static_cast<int>(routes.experts) * layout.cell_width;
  for (int64_t layer = 0; layer < routes.layers; ++layer) {
    const int left = layout.CellX(layer, 0);
    if (layer > 0) {
      FillRect(cr, left - layout.layer_gap, layout.grid_top, layout.layer_gap,
               geometry.grid_height, kSeparatorColor);
    }
    DrawText(cr, labels[layer], left + layer_width / 2.0, geometry.layer_label_baseline, 0.5);
  }

  // Colour scale: the top of the bar is value_max.
  for (int y = 0; y < geometry.legend_height; ++y) {
    const double fraction = 1.0 - static_cast<double>(y) / (geometry.legend_height - 1);
    FillRect(cr, geometry.legend_left, geometry.legend_top + y, kLegendBarWidth, 1,
             RouteColor(fraction));
  }
  SetColor(cr, kSeparatorColor);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, geometry.legend_left - 0.5, geometry.legend_top - 0.5, kLegendBarWidth + 1,
                  geometry.legend_height + 1);
  cairo_stroke(cr);
  const double label_x = geometry.legend_left + kLegendBarWidth + kPad;
  const double half_font = kLabelFontSize / 2 - 1;
  DrawText(cr, FormatScaleValue(options.value_max), label_x, geometry.legend_top + half_font, 0);
  DrawText(cr, FormatScaleValue((options.value_min + options.value_max) / 2), label_x,
           geometry.legend_top + geometry.legend_height / 2.0 + half_font, 0);
  DrawText(cr, FormatScaleValue(options.value_min), label_x,
           geometry.legend_top + geometry.legend_height + half_font, 0);

  DrawText(cr, kCaption, layout.grid_left, geometry.caption_baseline, 0);
  if (!options.title.empty()) {
    SetFont(cr, kTitleFontSize, /*bold=*/true);
    DrawText(cr, options.title, kMargin, geometry.title_baseline, 0);
  }
}

}  // namespace

std::vector<std::string> EncoderDecoderLayerLabels(int64_t encoder_layers,
                                                   int64_t decoder_layers) {
  std::vector<std::string> labels;
  for (int64_t i = 0; i < encoder_layers; ++i) labels.push_back(absl::StrCat("enc", i));
  for (int64_t i = 0; i < decoder_layers; ++i) labels.push_back(absl::StrCat("dec", i));
  return labels;
}

Rgb RouteColor(double fraction) {
  // Five anchors of matplotlib's viridis, interpolated linearly.
  static constexpr double kAnchors[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  if (std::isnan(fraction)) return kMissingColor;
  const double position = std::clamp(fraction, 0.0, 1.0) * 4;
  const int lower = std::min(static_cast<int>(position), 3);
  const double t = position - lower;
  auto channel = [&](int c) {
    return static_cast<uint8_t>(
        std::lround(kAnchors[lower][c] + t * (kAnchors[lower + 1][c] - kAnchors[lower][c])));
  };
  return {channel(0), channel(1), channel(2)};
}

int RouteMapLayout::CellX(int64_t layer, int64_t expert) const {
  return grid_left + static_cast<int>(layer * (experts * cell_width + layer_gap) +
                                      expert * cell_width);
}

int RouteMapLayout::CellY(int row) const {
  int group_index = 0;
  while (group_index + 1 < static_cast<int>(groups.size()) &&
         groups[group_index + 1].first_row <= row) {
    ++group_index;
  }
  return grid_top + row * cell_height + group_index * group_gap;
}

absl::StatusOr<RouteMapLayout> LayoutRouteMap(const RouteTable& routes,
                                              const std::vector<std::string>& task_names,
                                              const std::vector<RouteCategory>& categories,
                                              const std::vector<std::string>& layer_labels,
                                              const RouteMapOptions& options) {
  Geometry geometry;
  return ComputeLayout(routes, task_names, categories, layer_labels, options, geometry);
}

absl::Status WriteRouteMapPng(const RouteTable& routes,
                              const std::vector<std::string>& task_names,
                              const std::vector<RouteCategory>& categories,
                              const std::vector<std::string>& layer_labels,
                              const std::string& png_path, const RouteMapOptions& options) {
  Geometry geometry;
  TASKMOE_ASSIGN_OR_RETURN(
      const RouteMapLayout layout,
      ComputeLayout(routes, task_names, categories, layer_labels, options, geometry));
  SurfacePtr surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, layout.width, layout.height));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot create a ", layout.width, "x", layout.height, " route map image: ",
        cairo_status_to_string(cairo_surface_status(surface.get()))));
  }
  {
    ContextPtr cr(cairo_create(surface.get()));
    Draw(cr.get(), routes, task_names, layer_labels, options, layout, geometry);
  }
  cairo_surface_flush(surface.get());
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(
      surface.get(),
      [](void* out, const unsigned char* data, unsigned int length) {
        static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(data), length);
        return CAIRO_STATUS_SUCCESS;
      },
      &png);
  if (status != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError(absl::StrCat("cannot encode route map ", png_path, ": ",
                                            cairo_status_to_string(status)));
  }
  const absl::Status written = WriteFileAtomically(png_path, png);
  if (!written.ok()) return absl::UnavailableError(written.message());
  return absl::OkStatus();
}

}  // namespace taskmoe
