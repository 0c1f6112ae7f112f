#ifndef TASKMOE_MOE_DRAWING_CAIRO_CANVAS_H_
#define TASKMOE_MOE_DRAWING_CAIRO_CANVAS_H_

// The few cairo calls the route map draws with: owned surfaces and contexts, fonts, text,
// flat rectangles. Internal to moe/drawing.

#include <cairo/cairo.h>

#include <memory>
#include <string>
#include <vector>

#include "moe/drawing/route_map.h"

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

void SetFont(cairo_t* cr, double size, bool bold);

double TextWidth(cairo_t* cr, const std::string& text);

// The widest of `texts` in the current font, rounded up to whole pixels.
int MaxTextWidth(cairo_t* cr, const std::vector<std::string>& texts);

void SetColor(cairo_t* cr, const Rgb& color);

void FillRect(cairo_t* cr, double x, double y, double width, double height, const Rgb& color);

// Draws `text` in kTextColor with its baseline at y, starting at x (align 0), centred on x
// (0.5) or ending at x (1).
void DrawText(cairo_t* cr, const std::string& text, double x, double y, double align);

}  // namespace taskmoe::drawing_internal

#endif  // TASKMOE_MOE_DRAWING_CAIRO_CANVAS_H_
