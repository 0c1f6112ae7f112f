#ifndef TASKMOE_MOE_DRAWING_CAIRO_CANVAS_H_
#define TASKMOE_MOE_DRAWING_CAIRO_CANVAS_H_

// The few cairo calls the drawings of moe/drawing share: owned surfaces and contexts, PNG
// encoding, fonts, text, flat rectangles and lines. Internal to moe/drawing.

#include <cairo/cairo.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "moe/drawing/rgb.h"

namespace taskmoe::drawing_internal {

struct CairoSurfaceDeleter {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
struct CairoDeleter {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, CairoSurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, CairoDeleter>;

inline constexpr Rgb kTextColor = {0, 0, 0};

// An ARGB32 image surface; `what` names the drawing in the error when cairo cannot make one.
absl::StatusOr<SurfacePtr> CreateImageSurface(int width, int height, absl::string_view what);

// The PNG bytes of a drawn (flushed) surface.
absl::StatusOr<std::string> EncodePng(cairo_surface_t* surface, absl::string_view what);

void SetFont(cairo_t* cr, double size, bool bold);

double TextWidth(cairo_t* cr, const std::string& text);

// The widest of `texts` in the current font, rounded up to whole pixels.
int MaxTextWidth(cairo_t* cr, const std::vector<std::string>& texts);

void SetColor(cairo_t* cr, const Rgb& color);

void FillRect(cairo_t* cr, double x, double y, double width, double height, const Rgb& color);

// A straight line `width` pixels wide; `dashed` draws it in 4-pixel dashes.
void StrokeLine(cairo_t* cr, double x0, double y0, double x1, double y1, const Rgb& color,
                double width, bool dashed = false);

// Draws `text` in kTextColor with its baseline at y, starting at x (align 0), centred on x
// (0.5) or ending at x (1).
void DrawText(cairo_t* cr, const std::string& text, double x, double y, double align);

// DrawText turned a quarter counter-clockwise (reading upwards), for vertical axis labels: the
// baseline runs up through x, and `align` places the text along it around y.
void DrawUpwardText(cairo_t* cr, const std::string& text, double x, double y, double align);

}  // namespace taskmoe::drawing_internal

#endif  // TASKMOE_MOE_DRAWING_CAIRO_CANVAS_H_
