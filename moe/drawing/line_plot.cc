#include "moe/drawing/line_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/cairo_canvas.h"
#include "moe/drawing/plot_axes.h"

namespace taskmoe {
namespace {

// The plots share their canvas and axis helpers (cairo_canvas.h, plot_axes.h).
using namespace drawing_internal;  // NOLINT(build/namespaces)

constexpr int kLegendSwatch = 18;
constexpr int kTickLength = 4;
constexpr double kMarkerRadius = 2.5;

// Smallest and largest finite value of `values` over every series.
struct Extent {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void Add(double value) {
    if (!std::isfinite(value)) return;
    low = std::min(low, value);
    high = std::max(high, value);
  }
  bool empty() const { return low > high; }
};

absl::Status CheckSeries(const LinePlot& plot, Extent* x, Extent* y) {
  for (const PlotSeries& series : plot.series) {
    if (series.x.size() != series.y.size()) {
      return absl::InvalidArgumentError(absl::StrCat("plot '", plot.title, "': series '",
                                                     series.name, "' has ", series.x.size(),
                                                     " x values and ", series.y.size(), " y"));
    }
    for (size_t i = 0; i < series.x.size(); ++i) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
      x->Add(series.x[i]);
      y->Add(series.y[i]);
    }
  }
  if (x->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("plot '", plot.title, "': no series has a finite point"));
  }
  return absl::OkStatus();
}

// Where the data area is: its edges in pixels.
struct Frame {
  double left = 0;
  double right = 0;
  double top = 0;
  double bottom = 0;
};

void DrawAxes(cairo_t* cr, const LinePlot& plot, const Frame& frame, const AxisTicks& x_ticks,
              const AxisTicks& y_ticks, const AxisScale& to_x, const AxisScale& to_y) {
  SetFont(cr, kPlotFontSize, /*bold=*/false);
  for (const double tick : y_ticks.ticks) {
    const double y = std::round(to_y(tick)) + 0.5;
    StrokeLine(cr, frame.left, y, frame.right, y, kGridColor, 1);
    DrawText(cr, FormatTick(tick, y_ticks.decimals), frame.left - kTickLength - 2,
             y + kPlotFontSize / 2 - 1, 1);
  }
  for (const double tick : x_ticks.ticks) {
    const double x = std::round(to_x(tick)) + 0.5;
    StrokeLine(cr, x, frame.top, x, frame.bottom, kGridColor, 1);
    StrokeLine(cr, x, frame.bottom, x, frame.bottom + kTickLength, kAxisColor, 1);
    DrawText(cr, FormatTick(tick, x_ticks.decimals), x, frame.bottom + kPlotLineHeight, 0.5);
  }
  SetColor(cr, kAxisColor);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, frame.left + 0.5, frame.top + 0.5, frame.right - frame.left - 1,
                  frame.bottom - frame.top - 1);
  cairo_stroke(cr);
  if (!plot.x_label.empty()) {
    DrawText(cr, plot.x_label, (frame.left + frame.right) / 2, plot.height - kPlotMargin, 0.5);
  }
  if (!plot.y_label.empty()) {
    DrawUpwardText(cr, plot.y_label, kPlotMargin + kPlotFontSize, (frame.top + frame.bottom) / 2,
                   0.5);
  }
}

void DrawSeries(cairo_t* cr, const PlotSeries& series, const Rgb& color, const AxisScale& to_x,
                const AxisScale& to_y) {
  static constexpr double kDash[] = {6.0, 4.0};
  SetColor(cr, color);
  cairo_set_line_width(cr, 2);
  cairo_set_dash(cr, kDash, series.dashed ? 2 : 0, 0);
  bool drawing = false;
  for (size_t i = 0; i < series.x.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) {
      drawing = false;
      continue;
    }
    if (drawing) {
      cairo_line_to(cr, to_x(series.x[i]), to_y(series.y[i]));
    } else {
      cairo_move_to(cr, to_x(series.x[i]), to_y(series.y[i]));
    }
    drawing = true;
  }
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
  for (size_t i = 0; i < series.x.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
    cairo_arc(cr, to_x(series.x[i]), to_y(series.y[i]), kMarkerRadius, 0, 2 * M_PI);
    cairo_fill(cr);
  }
}

void DrawLegend(cairo_t* cr, const LinePlot& plot, const Frame& frame) {
  const bool named = std::any_of(plot.series.begin(), plot.series.end(),
                                 [](const PlotSeries& series) { return !series.name.empty(); });
  if (!named) return;
  SetFont(cr, kPlotFontSize, /*bold=*/false);
  const double left = frame.right + kPlotMargin;
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const double y = frame.top + kPlotLineHeight * (i + 0.5);
    StrokeLine(cr, left, y, left + kLegendSwatch, y, SeriesColor(i), 2, plot.series[i].dashed);
    DrawText(cr, plot.series[i].name, left + kLegendSwatch + 4, y + kPlotFontSize / 2 - 1, 0);
  }
}

// The data area left after the title, tick labels, axis labels and legend.
Frame LayOut(cairo_t* cr, const LinePlot& plot, const AxisTicks& y_ticks) {
  SetFont(cr, kPlotFontSize, /*bold=*/false);
  std::vector<std::string> tick_labels;
  for (const double tick : y_ticks.ticks) tick_labels.push_back(FormatTick(tick, y_ticks.decimals));
  std::vector<std::string> names;
  for (const PlotSeries& series : plot.series) names.push_back(series.name);
  const int legend_text = MaxTextWidth(cr, names);
  Frame frame;
  frame.left = kPlotMargin + (plot.y_label.empty() ? 0 : kPlotLineHeight) +
               MaxTextWidth(cr, tick_labels) + kTickLength + 4;
  frame.right = plot.width - kPlotMargin -
                (legend_text == 0 ? 0 : kPlotMargin + kLegendSwatch + 4 + legend_text);
  frame.top = kPlotMargin + (plot.title.empty() ? kPlotFontSize / 2 : kPlotTitleHeight);
  frame.bottom =
      plot.height - kPlotMargin - kPlotLineHeight - (plot.x_label.empty() ? 0 : kPlotLineHeight);
  return frame;
}

}  // namespace

absl::StatusOr<std::string> LinePlotPng(const LinePlot& plot) {
  Extent x_extent;
  Extent y_extent;
  TASKMOE_RETURN_IF_ERROR(CheckSeries(plot, &x_extent, &y_extent));
  const AxisTicks x_ticks = NiceTicks(x_extent.low, x_extent.high, 6);
  const AxisTicks y_ticks = NiceTicks(y_extent.low, y_extent.high, 5);
  const std::string what = absl::StrCat("plot '", plot.title, "'");
  TASKMOE_ASSIGN_OR_RETURN(SurfacePtr surface, CreateImageSurface(plot.width, plot.height, what));
  {
    ContextPtr context(cairo_create(surface.get()));
    cairo_t* cr = context.get();
    const Frame frame = LayOut(cr, plot, y_ticks);
    if (frame.right - frame.left < kMinPlotArea || frame.bottom - frame.top < kMinPlotArea) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", plot.width, "x", plot.height,
                                                     " pixels leave no room for the data"));
    }
    FillRect(cr, 0, 0, plot.width, plot.height, kPlotBackground);
    const AxisScale to_x{x_ticks.low, x_ticks.high, frame.left, frame.right};
    const AxisScale to_y{y_ticks.low, y_ticks.high, frame.bottom, frame.top};
    DrawAxes(cr, plot, frame, x_ticks, y_ticks, to_x, to_y);
    for (size_t i = 0; i < plot.series.size(); ++i) {
      DrawSeries(cr, plot.series[i], SeriesColor(i), to_x, to_y);
    }
    DrawLegend(cr, plot, frame);
    if (!plot.title.empty()) {
      SetFont(cr, kPlotTitleFontSize, /*bold=*/true);
      DrawText(cr, plot.title, kPlotMargin, kPlotMargin + kPlotTitleFontSize, 0);
    }
  }
  cairo_surface_flush(surface.get());
  return EncodePng(surface.get(), what);
}

}  // namespace taskmoe
