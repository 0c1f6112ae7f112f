#include "moe/drawing/forest_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/cairo_canvas.h"
#include "moe/drawing/plot_axes.h"

namespace taskmoe {
namespace {

// The plots share their canvas and axis helpers (cairo_canvas.h, plot_axes.h).
using namespace drawing_internal;  // NOLINT(build/namespaces)

constexpr int kRowHeight = 22;
constexpr int kMinRowHeight = 12;
constexpr int kTickLength = 4;
constexpr int kGap = 12;  // between the labels, the data area and the numbers
constexpr double kMarkerHalf = 3.5;
constexpr Rgb kBandColor = {246, 246, 246};

int TopOf(const ForestPlot& plot) {
  return kPlotMargin + (plot.title.empty() ? 0 : kPlotTitleHeight);
}

// Pixels below the rows: tick marks, tick labels, the axis label, the margin.
int BottomSpace(const ForestPlot& plot) {
  return kTickLength + kPlotLineHeight + (plot.axis_label.empty() ? 0 : kPlotLineHeight) +
         kPlotMargin;
}

// The axis: every finite end, estimate and the reference, rounded out to ticks.
AxisTicks AxisOf(const ForestPlot& plot) {
  double low = plot.reference;
  double high = plot.reference;
  for (const ForestRow& row : plot.rows) {
    for (const double value : {row.estimate, row.low, row.high}) {
      if (!std::isfinite(value)) continue;
      low = std::min(low, value);
      high = std::max(high, value);
    }
  }
  return NiceTicks(low, high, 5);
}

void DrawRow(cairo_t* cr, const ForestRow& row, double center_y, const AxisScale& to_x) {
  if (!std::isfinite(row.estimate)) {
    const std::string text = "undefined";
    SetColor(cr, kMutedTextColor);
    cairo_move_to(cr, (to_x.pixel_low + to_x.pixel_high - TextWidth(cr, text)) / 2,
                  center_y + kPlotFontSize / 2 - 1);
    cairo_show_text(cr, text.c_str());
    return;
  }
  const Rgb color = SeriesColor(row.color);
  if (std::isfinite(row.low) && std::isfinite(row.high)) {
    const double left = to_x(row.low);
    const double right = to_x(row.high);
    StrokeLine(cr, left, center_y, right, center_y, color, 2);
    StrokeLine(cr, left, center_y - 4, left, center_y + 4, color, 2);
    StrokeLine(cr, right, center_y - 4, right, center_y + 4, color, 2);
  }
  const double x = to_x(row.estimate);
  FillRect(cr, x - kMarkerHalf, center_y - kMarkerHalf, 2 * kMarkerHalf, 2 * kMarkerHalf, color);
}

}  // namespace

int ForestPlotHeight(const ForestPlot& plot) {
  return TopOf(plot) + kRowHeight * static_cast<int>(plot.rows.size()) + BottomSpace(plot);
}

absl::StatusOr<std::string> ForestPlotPng(const ForestPlot& plot) {
  const std::string what = absl::StrCat("forest plot '", plot.title, "'");
  if (plot.rows.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no rows"));
  const int height = plot.height > 0 ? plot.height : ForestPlotHeight(plot);
  const int rows = static_cast<int>(plot.rows.size());
  const double row_height = static_cast<double>(height - TopOf(plot) - BottomSpace(plot)) / rows;
  TASKMOE_ASSIGN_OR_RETURN(SurfacePtr surface, CreateImageSurface(plot.width, height, what));
  {
    ContextPtr context(cairo_create(surface.get()));
    cairo_t* cr = context.get();
    SetFont(cr, kPlotFontSize, /*bold=*/false);
    std::vector<std::string> labels;
    std::vector<std::string> values;
    for (const ForestRow& row : plot.rows) {
      labels.push_back(row.label);
      values.push_back(row.value_text);
    }
    const double left = kPlotMargin + MaxTextWidth(cr, labels) + kGap;
    const int value_width = MaxTextWidth(cr, values);
    const double right = plot.width - kPlotMargin - (value_width > 0 ? value_width + kGap : 0);
    if (right - left < kMinPlotArea || row_height < kMinRowHeight) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", plot.width, "x", height,
                                                     " pixels leave no room for ", rows,
                                                     " rows and their labels"));
    }
    FillRect(cr, 0, 0, plot.width, height, kPlotBackground);
    const double top = TopOf(plot);
    const double bottom = top + rows * row_height;
    for (int i = 1; i < rows; i += 2) {
      FillRect(cr, kPlotMargin, top + i * row_height, plot.width - 2 * kPlotMargin, row_height,
               kBandColor);
    }
    const AxisTicks axis = AxisOf(plot);
    const AxisScale to_x{axis.low, axis.high, left, right};
    for (const double tick : axis.ticks) {
      const double x = std::round(to_x(tick)) + 0.5;
      StrokeLine(cr, x, top, x, bottom, kGridColor, 1);
      StrokeLine(cr, x, bottom, x, bottom + kTickLength, kAxisColor, 1);
      DrawText(cr, FormatTick(tick, axis.decimals), x, bottom + kTickLength + kPlotFontSize, 0.5);
    }
    StrokeLine(cr, left, bottom + 0.5, right, bottom + 0.5, kAxisColor, 1);
    const double reference_x = std::round(to_x(plot.reference)) + 0.5;
    StrokeLine(cr, reference_x, top, reference_x, bottom, kAxisColor, 1, /*dashed=*/true);
    for (int i = 0; i < rows; ++i) {
      const double center_y = top + (i + 0.5) * row_height;
      DrawText(cr, plot.rows[i].label, kPlotMargin, center_y + kPlotFontSize / 2 - 1, 0);
      DrawRow(cr, plot.rows[i], center_y, to_x);
      DrawText(cr, plot.rows[i].value_text, plot.width - kPlotMargin,
               center_y + kPlotFontSize / 2 - 1, 1);
    }
    if (!plot.axis_label.empty()) {
      DrawText(cr, plot.axis_label, (left + right) / 2, height - kPlotMargin, 0.5);
    }
    if (!plot.title.empty()) {
      SetFont(cr, kPlotTitleFontSize, /*bold=*/true);
      DrawText(cr, plot.title, kPlotMargin, kPlotMargin + kPlotTitleFontSize, 0);
    }
  }
  cairo_surface_flush(surface.get());
  return EncodePng(surface.get(), what);
}

}  // namespace taskmoe
