#include "moe/drawing/cairo_canvas.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace taskmoe::drawing_internal {
namespace {

constexpr char kFontFamily[] = "DejaVu Sans";

}  // namespace

absl::StatusOr<SurfacePtr> CreateImageSurface(int width, int height, absl::string_view what) {
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot create a ", width, "x", height, " ", what, " image: ",
                     cairo_status_to_string(cairo_surface_status(surface.get()))));
  }
  return surface;
}

absl::StatusOr<std::string> EncodePng(cairo_surface_t* surface, absl::string_view what) {
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(
      surface,
      [](void* out, const unsigned char* data, unsigned int length) {
        static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(data), length);
        return CAIRO_STATUS_SUCCESS;
      },
      &png);
  if (status != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("cannot encode ", what, " as PNG: ", cairo_status_to_string(status)));
  }
  return png;
}

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

void StrokeLine(cairo_t* cr, double x0, double y0, double x1, double y1, const Rgb& color,
                double width, bool dashed) {
  static constexpr double kDash[] = {4.0, 4.0};
  SetColor(cr, color);
  cairo_set_line_width(cr, width);
  cairo_set_dash(cr, kDash, dashed ? 2 : 0, 0);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
}

void DrawText(cairo_t* cr, const std::string& text, double x, double y, double align) {
  SetColor(cr, kTextColor);
  cairo_move_to(cr, x - align * TextWidth(cr, text), y);
  cairo_show_text(cr, text.c_str());
}

void DrawUpwardText(cairo_t* cr, const std::string& text, double x, double y, double align) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, -M_PI / 2);
  DrawText(cr, text, 0, 0, align);
  cairo_restore(cr);
}

}  // namespace taskmoe::drawing_internal
