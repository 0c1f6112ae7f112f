#include "moe/drawing/cairo_canvas.h"

#include <algorithm>
#include <cmath>

namespace taskmoe::drawing_internal {
namespace {

constexpr char kFontFamily[] = "DejaVu Sans";

}  // namespace

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

int MaxTextWidth(cairo_t* cr, const std::vector<std::string>& texts) {
  double width = 0;
  for (const std::string& text : texts) width = std::max(width, TextWidth(cr, text));
  return static_cast<int>(std::ceil(width));
}

void SetColor(cairo_t* cr, const Rgb& color) {
  cairo_set_source_rgb(cr, color.r / 255.0, color.g / 255.0, color.b / 255.0);
}

void FillRect(cairo_t* cr, double x, double y, double width, double height, const Rgb& color) {
  SetColor(cr, color);
  cairo_rectangle(cr, x, y, width, height);
  cairo_fill(cr);
}

void DrawText(cairo_t* cr, const std::string& text, double x, double y, double align) {
  SetColor(cr, kTextColor);
  cairo_move_to(cr, x - align * TextWidth(cr, text), y);
  cairo_show_text(cr, text.c_str());
}

}  // namespace taskmoe::drawing_internal
