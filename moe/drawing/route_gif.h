#ifndef TASKMOE_MOE_DRAWING_ROUTE_GIF_H_
#define TASKMOE_MOE_DRAWING_ROUTE_GIF_H_

// Route maps of a run's evaluations as one animated GIF (giflib), so the routes' evolution
// during training plays as a film: every frame is the route map route_map.h draws, on one
// fixed palette, looping forever.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "moe/drawing/route_map.h"

namespace taskmoe {

// One frame: the route weights of one moment (e.g. an evaluation) and its title.
struct RouteFrame {
  RouteTable routes;
  std::string title;
};

// Writes `frames`, in order, as an animated GIF to `gif_path` (through a temporary file and a
// rename, so an existing file is replaced whole or not at all). Each frame is the route map of
// its routes with `options` and the frame's title (options.title is not used); every frame
// shows `frame_delay_ms` (rounded to the GIF's 10 ms unit) and the animation loops forever.
// All frames must have the same [tasks, layers, experts] shape; a frame drawn smaller (a
// shorter title) is padded with the background to the largest. Errors name the frame.
absl::Status WriteRouteMapGif(const std::vector<RouteFrame>& frames,
                              const std::vector<std::string>& task_names,
                              const std::vector<RouteCategory>& categories,
                              const std::vector<std::string>& layer_labels,
                              const std::string& gif_path, const RouteMapOptions& options = {},
                              int frame_delay_ms = 200);

// The GIF's 256 colours: the route map's flat colours (RouteMapFlatColors) exactly, greys for
// anti-aliased text, and the rest evenly spaced along the colour scale (RouteColor), so every
// cell's colour has a scale entry within a couple of units per channel. Each pixel takes its
// nearest entry (Euclidean in RGB, the first on ties).
std::vector<Rgb> RouteGifPalette();

}  // namespace taskmoe

#endif  // TASKMOE_MOE_DRAWING_ROUTE_GIF_H_
