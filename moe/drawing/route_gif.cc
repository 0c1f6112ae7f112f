#include "moe/drawing/route_gif.h"

#include <gif_lib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

constexpr int kPaletteSize = 256;
constexpr int kGreyLevels = 32;
constexpr int kMaxGifSide = 65535;       // the GIF's 16-bit image sizes
constexpr int kMaxDelayMs = 65535 * 10;  // the GIF's 16-bit delay in 10 ms units
constexpr char kNetscapeApplication[] = "NETSCAPE2.0";

// Nearest palette entry of each colour, memoised: a route map has few distinct colours.
class PaletteIndexer {
 public:
  explicit PaletteIndexer(std::vector<Rgb> palette) : palette_(std::move(palette)) {}

  uint8_t IndexOf(const Rgb& color) {
    const uint32_t key = (uint32_t{color.r} << 16) | (uint32_t{color.g} << 8) | color.b;
    auto [it, inserted] = cache_.try_emplace(key, 0);
    if (inserted) it->second = Nearest(color);
    return it->second;
  }

 private:
  uint8_t Nearest(const Rgb& color) const {
    int best = 0;
    int best_distance = INT32_MAX;
    for (int i = 0; i < static_cast<int>(palette_.size()); ++i) {
      const int dr = int{palette_[i].r} - color.r;
      const int dg = int{palette_[i].g} - color.g;
      const int db = int{palette_[i].b} - color.b;
      const int distance = dr * dr + dg * dg + db * db;
      if (distance < best_distance) {
        best = i;
        best_distance = distance;
      }
    }
    return static_cast<uint8_t>(best);
  }

  std::vector<Rgb> palette_;
  absl::flat_hash_map<uint32_t, uint8_t> cache_;
};

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    EGifCloseFile(gif, &error);
  }
};
using GifPtr = std::unique_ptr<GifFileType, GifCloser>;

int AppendToString(GifFileType* gif, const GifByteType* data, int length) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), length);
  return length;
}

absl::Status GifError(const GifFileType* gif, const std::string& what) {
  return absl::InternalError(absl::StrCat("cannot encode GIF ", what, ": ",
                                          GifErrorString(gif->Error)));
}

absl::Status ValidateFrames(const std::vector<RouteFrame>& frames, int frame_delay_ms) {
  if (frames.empty()) return absl::InvalidArgumentError("no route frames to animate");
  if (frame_delay_ms < 0 || frame_delay_ms > kMaxDelayMs) {
    return absl::InvalidArgumentError(absl::StrCat("frame delay ", frame_delay_ms,
                                                   " ms is outside [0, ", kMaxDelayMs, "]"));
  }
  const RouteTable& first = frames.front().routes;
  for (size_t i = 1; i < frames.size(); ++i) {
    const RouteTable& routes = frames[i].routes;
    if (routes.tasks != first.tasks || routes.layers != first.layers ||
        routes.experts != first.experts) {
      return absl::InvalidArgumentError(absl::StrCat(
          "frame ", i, " (\"", frames[i].title, "\") has routes [", routes.tasks, ", ",
          routes.layers, ", ", routes.experts, "] but frame 0 (\"", frames.front().title,
          "\") has [", first.tasks, ", ", first.layers, ", ", first.experts,
          "]; all frames need the same tasks, layers and experts"));
    }
  }
  return absl::OkStatus();
}

// Screen, palette and the NETSCAPE2.0 application extension (loop count 0: forever).
absl::Status PutHeader(GifFileType* gif, int width, int height, const std::vector<Rgb>& palette) {
  std::vector<GifColorType> colors;
  for (const Rgb& c : palette) colors.push_back({c.r, c.g, c.b});
  std::unique_ptr<ColorMapObject, void (*)(ColorMapObject*)> color_map(
      GifMakeMapObject(static_cast<int>(colors.size()), colors.data()), GifFreeMapObject);
  if (color_map == nullptr) return absl::InternalError("cannot make the GIF palette");
  EGifSetGifVersion(gif, /*gif89=*/true);
  if (EGifPutScreenDesc(gif, width, height, /*ColorRes=*/8, /*BackGround=*/0,
                        color_map.get()) == GIF_ERROR) {
    return GifError(gif, "screen");
  }
  const unsigned char loop_forever[3] = {1, 0, 0};  // sub-block id 1, loop count 0 (LE)
  if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
      EGifPutExtensionBlock(gif, sizeof(kNetscapeApplication) - 1, kNetscapeApplication) ==
          GIF_ERROR ||
      EGifPutExtensionBlock(gif, sizeof(loop_forever), loop_forever) == GIF_ERROR ||
      EGifPutExtensionTrailer(gif) == GIF_ERROR) {
    return GifError(gif, "loop extension");
  }
  return absl::OkStatus();
}

// One frame: its delay, then its pixels as palette indices (padded with the background).
absl::Status PutFrame(GifFileType* gif, const RouteMapImage& image, int width, int height,
                      int frame_delay_ms, PaletteIndexer& indexer) {
  GraphicsControlBlock control;
  control.DisposalMode = DISPOSE_DO_NOT;
  control.UserInputFlag = false;
  control.DelayTime = static_cast<int>(std::lround(frame_delay_ms / 10.0));
  control.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType extension[4];
  EGifGCBToExtension(&control, extension);
  if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, sizeof(extension), extension) ==
      GIF_ERROR) {
    return GifError(gif, "frame delay");
  }
  const GifPixelType background = indexer.IndexOf(image.At(0, 0));  // the map's margin
  std::vector<GifPixelType> pixels(static_cast<size_t>(width) * height, background);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      pixels[static_cast<size_t>(y) * width + x] = indexer.IndexOf(image.At(x, y));
    }
  }
  if (EGifPutImageDesc(gif, 0, 0, width, height, /*GifInterlace=*/false, nullptr) ==
          GIF_ERROR ||
      EGifPutLine(gif, pixels.data(), static_cast<int>(pixels.size())) == GIF_ERROR) {
    return GifError(gif, "frame");
  }
  return absl::OkStatus();
}

// The frames' common size: the largest drawn, each frame's title being part of its layout.
absl::StatusOr<std::pair<int, int>> CanvasSize(const std::vector<RouteFrame>& frames,
                                               const std::vector<std::string>& task_names,
                                               const std::vector<RouteCategory>& categories,
                                               const std::vector<std::string>& layer_labels,
                                               RouteMapOptions options) {
  int width = 0;
  int height = 0;
  for (const RouteFrame& frame : frames) {
    options.title = frame.title;
    TASKMOE_ASSIGN_OR_RETURN(
        const RouteMapLayout layout,
        LayoutRouteMap(frame.routes, task_names, categories, layer_labels, options));
    width = std::max(width, layout.width);
    height = std::max(height, layout.height);
  }
  if (width > kMaxGifSide || height > kMaxGifSide) {
    return absl::InvalidArgumentError(absl::StrCat("route map of ", width, "x", height,
                                                   " pixels exceeds the GIF's ", kMaxGifSide));
  }
  return std::make_pair(width, height);
}

}  // namespace

std::vector<Rgb> RouteGifPalette() {
  std::vector<Rgb> palette;
  auto add_unique = [&](const Rgb& color) {
    if (std::find(palette.begin(), palette.end(), color) == palette.end()) {
      palette.push_back(color);
    }
  };
  for (const Rgb& color : RouteMapFlatColors()) add_unique(color);
  for (int i = 0; i < kGreyLevels; ++i) {
    const auto level = static_cast<uint8_t>(std::lround(i * 255.0 / (kGreyLevels - 1)));
    add_unique({level, level, level});
  }
  const int ramp = kPaletteSize - static_cast<int>(palette.size());
  for (int i = 0; i < ramp; ++i) palette.push_back(RouteColor(i / (ramp - 1.0)));
  return palette;
}

absl::Status WriteRouteMapGif(const std::vector<RouteFrame>& frames,
                              const std::vector<std::string>& task_names,
                              const std::vector<RouteCategory>& categories,
                              const std::vector<std::string>& layer_labels,
                              const std::string& gif_path, const RouteMapOptions& options,
                              int frame_delay_ms) {
  TASKMOE_RETURN_IF_ERROR(ValidateFrames(frames, frame_delay_ms));
  TASKMOE_ASSIGN_OR_RETURN(const auto size,
                           CanvasSize(frames, task_names, categories, layer_labels, options));
  const auto [width, height] = size;
  const std::vector<Rgb> palette = RouteGifPalette();
  PaletteIndexer indexer(palette);
  std::string bytes;
  int error = 0;
  GifPtr gif(EGifOpen(&bytes, AppendToString, &error));
  if (gif == nullptr) {
    return absl::InternalError(absl::StrCat("cannot start GIF ", gif_path, ": ",
                                            GifErrorString(error)));
  }
  TASKMOE_RETURN_IF_ERROR(PutHeader(gif.get(), width, height, palette));
  RouteMapOptions frame_options = options;
  for (const RouteFrame& frame : frames) {
    frame_options.title = frame.title;
    TASKMOE_ASSIGN_OR_RETURN(
        const RouteMapImage image,
        RenderRouteMap(frame.routes, task_names, categories, layer_labels, frame_options));
    TASKMOE_RETURN_IF_ERROR(
        PutFrame(gif.get(), image, width, height, frame_delay_ms, indexer));
  }
  // EGifCloseFile writes the trailer and frees the handle, also when it fails.
  if (EGifCloseFile(gif.release(), &error) == GIF_ERROR) {
    return absl::InternalError(absl::StrCat("cannot finish GIF ", gif_path, ": ",
                                            GifErrorString(error)));
  }
  const absl::Status written = WriteFileAtomically(gif_path, bytes);
  if (!written.ok()) return absl::UnavailableError(written.message());
  return absl::OkStatus();
}

}  // namespace taskmoe
