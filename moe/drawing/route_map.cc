#include "moe/drawing/route_map.h"

#include <cairo/cairo.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/cairo_canvas.h"
#include "moe/drawing/route_map_layout.h"

namespace taskmoe {
namespace {

// The route map's canvas and layout helpers (cairo_canvas.h, route_map_layout.h).
using namespace drawing_internal;  // NOLINT(build/namespaces)

const Rgb kBackgroundColor = {255, 255, 255};
const Rgb kMissingColor = {128, 128, 128};  // NaN weights
const Rgb kSeparatorColor = {60, 60, 60};
const Rgb kSubSeparatorColor = {185, 185, 185};
// Categories alternate between two colour families: the category band's colour, then the two
// shades its sub-category bands alternate between.
const Rgb kBandColors[2][3] = {{{232, 238, 248}, {212, 224, 243}, {194, 211, 237}},
                               {{248, 242, 228}, {240, 229, 203}, {231, 216, 180}}};

// Whether display row `row` starts a category.
bool StartsGroup(const RouteMapLayout& layout, int row) {
  return std::any_of(layout.groups.begin(), layout.groups.end(),
                     [row](const RouteMapLayout::Group& group) { return group.first_row == row; });
}

// Top and height of the display rows [first_row, first_row + rows).
std::pair<int, int> RowSpan(const RouteMapLayout& layout, const RouteMapLayout::Group& group) {
  const int top = layout.CellY(group.first_row);
  return {top, layout.CellY(group.first_row + group.rows - 1) + layout.cell_height - top};
}

// Category bands and labels, sub-category bands and labels inside them, the separators
// between them, and the task names.
void DrawBands(cairo_t* cr, const std::vector<std::string>& task_names,
               const RouteMapLayout& layout, const Geometry& geometry) {
  size_t sub = 0;
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    const RouteMapLayout::Group& group = layout.groups[g];
    const Rgb* colors = kBandColors[g % 2];
    const auto [top, height] = RowSpan(layout, group);
    FillRect(cr, geometry.band_left, top, layout.grid_left - geometry.band_left, height,
             colors[0]);
    SetFont(cr, kLabelFontSize, /*bold=*/true);
    DrawText(cr, group.name, geometry.band_left + kPad / 2,
             top + height / 2.0 + kLabelFontSize / 2 - 1, 0);
    SetFont(cr, kSubLabelFontSize, /*bold=*/false);
    for (int shade = 0; sub < layout.subgroups.size() &&
                        layout.subgroups[sub].first_row < group.first_row + group.rows;
         ++sub, ++shade) {
      const auto [sub_top, sub_height] = RowSpan(layout, layout.subgroups[sub]);
      FillRect(cr, geometry.subband_left, sub_top, layout.grid_left - geometry.subband_left,
               sub_height, colors[1 + shade % 2]);
      DrawText(cr, layout.subgroups[sub].name, geometry.subband_left + kPad / 2,
               sub_top + sub_height / 2.0 + kSubLabelFontSize / 2 - 1, 0);
    }
  }
  const int grid_right = layout.grid_left + geometry.grid_width;
  for (int row = 1; row < static_cast<int>(layout.row_task.size()); ++row) {
    const int gap = layout.CellY(row) - layout.CellY(row - 1) - layout.cell_height;
    if (gap <= 0) continue;
    const bool category = StartsGroup(layout, row);
    const int left = category ? geometry.band_left : geometry.subband_left;
    FillRect(cr, left, layout.CellY(row) - gap, grid_right - left, gap,
             category ? kSeparatorColor : kSubSeparatorColor);
  }
  SetFont(cr, kLabelFontSize, /*bold=*/false);
  for (int row = 0; row < static_cast<int>(layout.row_task.size()); ++row) {
    DrawText(cr, task_names[layout.row_task[row]], geometry.task_label_right,
             layout.CellY(row) + layout.cell_height / 2.0 + kLabelFontSize / 2 - 1.5, 1);
  }
}

void DrawCells(cairo_t* cr, const RouteTable& routes, const RouteMapOptions& options,
               const RouteMapLayout& layout) {
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
}

void DrawLayerLabels(cairo_t* cr, const std::vector<std::string>& layer_labels,
                     const RouteMapLayout& layout, const Geometry& geometry) {
  const std::vector<std::string> labels = LayerLabelsOrIndices(layer_labels, layout.layers);
  SetFont(cr, kLabelFontSize, /*bold=*/false);
  const int layer_width = static_cast<int>(layout.experts) * layout.cell_width;
  for (int64_t layer = 0; layer < layout.layers; ++layer) {
    const int left = layout.CellX(layer, 0);
    if (layer > 0) {
      FillRect(cr, left - layout.layer_gap, layout.grid_top, layout.layer_gap,
               geometry.grid_height, kSeparatorColor);
    }
    DrawText(cr, labels[layer], left + layer_width / 2.0, geometry.layer_label_baseline, 0.5);
  }
}

// The colour scale: the top of the bar is value_max.
void DrawLegend(cairo_t* cr, const RouteMapOptions& options, const Geometry& geometry) {
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
  SetFont(cr, kLabelFontSize, /*bold=*/false);
  const double label_x = geometry.legend_left + kLegendBarWidth + kPad;
  const double half_font = kLabelFontSize / 2 - 1;
  DrawText(cr, FormatScaleValue(options.value_max), label_x, geometry.legend_top + half_font, 0);
  DrawText(cr, FormatScaleValue((options.value_min + options.value_max) / 2), label_x,
           geometry.legend_top + geometry.legend_height / 2.0 + half_font, 0);
  DrawText(cr, FormatScaleValue(options.value_min), label_x,
           geometry.legend_top + geometry.legend_height + half_font, 0);
}

void Draw(cairo_t* cr, const RouteTable& routes, const std::vector<std::string>& task_names,
          const std::vector<std::string>& layer_labels, const RouteMapOptions& options,
          const RouteMapLayout& layout, const Geometry& geometry) {
  FillRect(cr, 0, 0, layout.width, layout.height, kBackgroundColor);
  DrawBands(cr, task_names, layout, geometry);
  DrawCells(cr, routes, options, layout);
  DrawLayerLabels(cr, layer_labels, layout, geometry);
  DrawLegend(cr, options, geometry);
  SetFont(cr, kLabelFontSize, /*bold=*/false);
  DrawText(cr, kCaption, layout.grid_left, geometry.caption_baseline, 0);
  if (!options.title.empty()) {
    SetFont(cr, kTitleFontSize, /*bold=*/true);
    DrawText(cr, options.title, kMargin, geometry.title_baseline, 0);
  }
}

// The route map drawn on an image surface (the one drawing path of the PNG and the pixels).
absl::StatusOr<SurfacePtr> DrawSurface(const RouteTable& routes,
                                       const std::vector<std::string>& task_names,
                                       const std::vector<RouteCategory>& categories,
                                       const std::vector<std::string>& layer_labels,
                                       const RouteMapOptions& options) {
  Geometry geometry;
  TASKMOE_ASSIGN_OR_RETURN(
      const RouteMapLayout layout,
      ComputeLayout(routes, task_names, categories, layer_labels, options, geometry));
  TASKMOE_ASSIGN_OR_RETURN(SurfacePtr surface,
                           CreateImageSurface(layout.width, layout.height, "route map"));
  {
    ContextPtr cr(cairo_create(surface.get()));
    Draw(cr.get(), routes, task_names, layer_labels, options, layout, geometry);
  }
  cairo_surface_flush(surface.get());
  return surface;
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

absl::StatusOr<RouteMapImage> RenderRouteMap(const RouteTable& routes,
                                             const std::vector<std::string>& task_names,
                                             const std::vector<RouteCategory>& categories,
                                             const std::vector<std::string>& layer_labels,
                                             const RouteMapOptions& options) {
  TASKMOE_ASSIGN_OR_RETURN(
      const SurfacePtr surface,
      DrawSurface(routes, task_names, categories, layer_labels, options));
  RouteMapImage image;
  image.width = cairo_image_surface_get_width(surface.get());
  image.height = cairo_image_surface_get_height(surface.get());
  image.pixels.reserve(static_cast<size_t>(image.width) * image.height);
  const int stride = cairo_image_surface_get_stride(surface.get());
  const unsigned char* data = cairo_image_surface_get_data(surface.get());
  for (int y = 0; y < image.height; ++y) {
    // ARGB32 pixels are native-endian words; the map is opaque, so alpha is always 255.
    const uint32_t* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (int x = 0; x < image.width; ++x) {
      image.pixels.push_back({static_cast<uint8_t>(row[x] >> 16),
                              static_cast<uint8_t>(row[x] >> 8), static_cast<uint8_t>(row[x])});
    }
  }
  return image;
}

std::vector<Rgb> RouteMapFlatColors() {
  std::vector<Rgb> colors = {kBackgroundColor, kTextColor, kMissingColor, kSeparatorColor,
                             kSubSeparatorColor};
  for (const auto& family : kBandColors) colors.insert(colors.end(), family, family + 3);
  return colors;
}

absl::Status WriteRouteMapPng(const RouteTable& routes,
                              const std::vector<std::string>& task_names,
                              const std::vector<RouteCategory>& categories,
                              const std::vector<std::string>& layer_labels,
                              const std::string& png_path, const RouteMapOptions& options) {
  TASKMOE_ASSIGN_OR_RETURN(
      const SurfacePtr surface,
      DrawSurface(routes, task_names, categories, layer_labels, options));
  TASKMOE_ASSIGN_OR_RETURN(const std::string png,
                           EncodePng(surface.get(), absl::StrCat("route map ", png_path)));
  const absl::Status written = WriteFileAtomically(png_path, png);
  if (!written.ok()) return absl::UnavailableError(written.message());
  return absl::OkStatus();
}

}  // namespace taskmoe