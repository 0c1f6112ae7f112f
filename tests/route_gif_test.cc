// The animated route-map GIF (moe/drawing/route_gif.h) and the run-directory reader that feeds
// it (moe/train/route_evolution.h), checked by decoding the written GIF with giflib.
#include <gif_lib.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/drawing/route_gif.h"
#include "moe/drawing/route_map.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/train/checkpoint.h"
#include "moe/train/route_evolution.h"
#include "tests/temporary_files.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = (fs::path(::testing::TempDir()) / name).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Task t, layer l, expert e holds its flat index / (count - 1): weights across the scale.
RouteTable GradedRoutes(int64_t tasks, int64_t layers, int64_t experts) {
  RouteTable table{{}, tasks, layers, experts};
  const int64_t count = tasks * layers * experts;
  for (int64_t i = 0; i < count; ++i) table.values.push_back(static_cast<float>(i) / (count - 1));
  return table;
}

RouteTable ConstantRoutes(int64_t tasks, int64_t layers, int64_t experts, float value) {
  return {std::vector<float>(tasks * layers * experts, value), tasks, layers, experts};
}

struct DecodedGif {
  bool ok = false;
  std::string signature;  // the file's first 6 bytes: "GIF89a"
  int width = 0;
  int height = 0;
  std::vector<Rgb> palette;
  std::vector<std::vector<uint8_t>> frames;  // palette indices, row by row
  std::vector<int> delays_cs;
  bool loops_forever = false;

  Rgb At(size_t frame, int x, int y) const {
    return palette[frames[frame][static_cast<size_t>(y) * width + x]];
  }
};

// Whether `blocks` hold the NETSCAPE2.0 application extension with loop count 0.
bool HasLoopForever(const ExtensionBlock* blocks, int count) {
  for (int i = 0; i + 1 < count; ++i) {
    const ExtensionBlock& app = blocks[i];
    const ExtensionBlock& data = blocks[i + 1];
    if (app.Function == APPLICATION_EXT_FUNC_CODE && app.ByteCount == 11 &&
        std::string(reinterpret_cast<const char*>(app.Bytes), 11) == "NETSCAPE2.0" &&
        data.Function == CONTINUE_EXT_FUNC_CODE && data.ByteCount == 3 && data.Bytes[0] == 1 &&
        data.Bytes[1] == 0 && data.Bytes[2] == 0) {
      return true;
    }
  }
  return false;
}

DecodedGif DecodeGif(const std::string& path) {
  DecodedGif decoded;
  int error = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &error);
  if (gif == nullptr) return decoded;
  if (DGifSlurp(gif) == GIF_OK && gif->SColorMap != nullptr) {
    decoded.ok = true;
    // (DGifGetGifVersion cannot tell 87a from 89a in giflib 5.2: it looks at the '8'.)
    decoded.signature = ReadFileBytes(path).value_or("").substr(0, 6);
    decoded.width = gif->SWidth;
    decoded.height = gif->SHeight;
    for (int i = 0; i < gif->SColorMap->ColorCount; ++i) {
      const GifColorType& c = gif->SColorMap->Colors[i];
      decoded.palette.push_back({c.Red, c.Green, c.Blue});
    }
    for (int i = 0; i < gif->ImageCount; ++i) {
      const SavedImage& image = gif->SavedImages[i];
      EXPECT_EQ(image.ImageDesc.Width, gif->SWidth);
      EXPECT_EQ(image.ImageDesc.Height, gif->SHeight);
      EXPECT_EQ(image.ImageDesc.ColorMap, nullptr);  // the global palette throughout
      decoded.frames.emplace_back(image.RasterBits,
                                  image.RasterBits + image.ImageDesc.Width * image.ImageDesc.Height);
      GraphicsControlBlock control;
      decoded.delays_cs.push_back(DGifSavedExtensionToGCB(gif, i, &control) == GIF_OK
                                      ? control.DelayTime
                                      : -1);
      decoded.loops_forever = decoded.loops_forever ||
                              HasLoopForever(image.ExtensionBlocks, image.ExtensionBlockCount);
    }
  }
  DGifCloseFile(gif, &error);
  return decoded;
}

int MaxChannelError(const Rgb& a, const Rgb& b) {
  return std::max({std::abs(a.r - b.r), std::abs(a.g - b.g), std::abs(a.b - b.b)});
}

// The palette entry nearest `color`, as the writer's quantiser chooses it.
Rgb NearestEntry(const std::vector<Rgb>& palette, const Rgb& color) {
  auto distance = [&](const Rgb& p) {
    return (p.r - color.r) * (p.r - color.r) + (p.g - color.g) * (p.g - color.g) +
           (p.b - color.b) * (p.b - color.b);
  };
  return *std::min_element(palette.begin(), palette.end(), [&](const Rgb& a, const Rgb& b) {
    return distance(a) < distance(b);
  });
}

const std::vector<std::string> kTasks = {"task_a", "task_b", "task_c", "task_d"};
const std::vector<RouteCategory> kCategories = {
    {"qa", {}, {{"extractive", {"task_c"}}, {"multiple choice", {"task_a", "task_d"}}}},
    {"classification", {"task_b"}, {}},
};
const std::vector<std::string> kLayers = {"enc0", "dec0"};

TEST(RouteGifPaletteTest, HoldsTheFlatColoursAndCoversTheScale) {
  const std::vector<Rgb> palette = RouteGifPalette();
  ASSERT_EQ(palette.size(), 256u);
  for (const Rgb& flat : RouteMapFlatColors()) {
    EXPECT_NE(std::find(palette.begin(), palette.end(), flat), palette.end());
  }
  EXPECT_NE(std::find(palette.begin(), palette.end(), RouteColor(0.0)), palette.end());
  EXPECT_NE(std::find(palette.begin(), palette.end(), RouteColor(1.0)), palette.end());
  // Every colour of the scale has a nearby entry, and it is a colour of the scale, not a grey
  // or a band colour that happens to be close.
  for (int i = 0; i <= 1000; ++i) {
    const Rgb color = RouteColor(i / 1000.0);
    const Rgb nearest = NearestEntry(palette, color);
    EXPECT_LE(MaxChannelError(nearest, color), 2) << i;
    bool on_scale = false;
    for (int j = 0; j <= 1000 && !on_scale; ++j) {
      on_scale = MaxChannelError(RouteColor(j / 1000.0), nearest) <= 1;
    }
    EXPECT_TRUE(on_scale) << i;
  }
}

TEST(RouteMapGifTest, FramesSizeDelayLoopAndCellColours) {
  const std::string dir = FreshDir("gif_frames");
  const std::string path = dir + "/routes.gif";
  const std::vector<RouteFrame> frames = {{GradedRoutes(4, 2, 3), "step 100"},
                                          {ConstantRoutes(4, 2, 3, 0.25f), "step 200"},
                                          {ConstantRoutes(4, 2, 3, 1.0f), "step 300"}};
  const absl::Status status = WriteRouteMapGif(frames, kTasks, kCategories, kLayers, path);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(testing::TemporarySiblings(path).empty());

  const DecodedGif gif = DecodeGif(path);
  ASSERT_TRUE(gif.ok);
  EXPECT_EQ(gif.signature, "GIF89a");
  ASSERT_EQ(gif.frames.size(), 3u);
  EXPECT_EQ(gif.delays_cs, (std::vector<int>{20, 20, 20}));
  EXPECT_TRUE(gif.loops_forever);
  EXPECT_EQ(gif.palette, RouteGifPalette());

  RouteMapOptions options;
  options.title = "step 100";
  absl::StatusOr<RouteMapLayout> layout =
      LayoutRouteMap(frames[0].routes, kTasks, kCategories, kLayers, options);
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(gif.width, layout->width);
  EXPECT_EQ(gif.height, layout->height);
  // Sub-category bands are part of each frame's layout: qa's two, then classification's own task.
  ASSERT_EQ(layout->subgroups.size(), 2u);
  EXPECT_EQ(layout->row_task, (std::vector<int64_t>{2, 0, 3, 1}));

  for (size_t f = 0; f < frames.size(); ++f) {
    const RouteTable& routes = frames[f].routes;
    for (int row = 0; row < 4; ++row) {
      const int64_t task = layout->row_task[row];
      for (int64_t l = 0; l < 2; ++l) {
        for (int64_t e = 0; e < 3; ++e) {
          const Rgb expected = RouteColor(routes.values[(task * 2 + l) * 3 + e]);
          const int x = layout->CellX(l, e) + layout->cell_width / 2;
          const int y = layout->CellY(row) + layout->cell_height / 2;
          const Rgb actual = gif.At(f, x, y);
          EXPECT_EQ(actual, NearestEntry(gif.palette, expected)) << f << " " << row << " " << l;
          EXPECT_LE(MaxChannelError(actual, expected), 2) << f << " " << row << " " << l;
        }
      }
    }
    // Flat colours come through exactly: the margin and the separator between layers.
    EXPECT_EQ(gif.At(f, 0, 0), (Rgb{255, 255, 255}));
    EXPECT_EQ(gif.At(f, layout->CellX(1, 0) - 1, layout->CellY(0)), (Rgb{60, 60, 60}));
  }
  // The frames differ where their routes do.
  const int x = layout->CellX(0, 0) + 1;
  const int y = layout->CellY(0) + 1;
  EXPECT_FALSE(gif.At(1, x, y) == gif.At(2, x, y));
}

TEST(RouteMapGifTest, DelayAndSmallerFramesPadded) {
  const std::string path = FreshDir("gif_padded") + "/routes.gif";
  const std::string long_title(80, 'w');  // wider than the map
  const std::vector<RouteFrame> frames = {{ConstantRoutes(4, 1, 2, 0.5f), "step 1"},
                                          {ConstantRoutes(4, 1, 2, 0.5f), long_title}};
  ASSERT_TRUE(WriteRouteMapGif(frames, kTasks, {}, {}, path, {}, 1234).ok());
  const DecodedGif gif = DecodeGif(path);
  ASSERT_TRUE(gif.ok);
  EXPECT_EQ(gif.delays_cs, (std::vector<int>{123, 123}));
  RouteMapOptions wide;
  wide.title = long_title;
  absl::StatusOr<RouteMapLayout> wide_layout =
      LayoutRouteMap(frames[1].routes, kTasks, {}, {}, wide);
  absl::StatusOr<RouteMapLayout> narrow_layout = LayoutRouteMap(frames[0].routes, kTasks, {}, {});
  ASSERT_TRUE(wide_layout.ok() && narrow_layout.ok());
  ASSERT_GT(wide_layout->width, narrow_layout->width);
  EXPECT_EQ(gif.width, wide_layout->width);
  // The first frame is padded on the right with the background.
  EXPECT_EQ(gif.At(0, gif.width - 1, gif.height / 2), (Rgb{255, 255, 255}));
}

TEST(RouteMapGifTest, BadInputIsAnErrorAndLeavesAnExistingGifAlone) {
  const std::string dir = FreshDir("gif_errors");
  const std::string path = dir + "/routes.gif";
  ASSERT_TRUE(WriteRouteMapGif({{GradedRoutes(4, 2, 3), "step 1"}}, kTasks, {}, {}, path).ok());
  absl::StatusOr<std::string> before = ReadFileBytes(path);
  ASSERT_TRUE(before.ok()) << before.status();

  absl::Status status = WriteRouteMapGif({}, kTasks, {}, {}, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("no route frames"), std::string::npos) << status;

  status = WriteRouteMapGif(
      {{GradedRoutes(4, 2, 3), "step 1"}, {GradedRoutes(4, 3, 3), "step 2"}}, kTasks, {}, {}, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("frame 1 (\"step 2\") has routes [4, 3, 3]"), std::string::npos)
      << status;

  status = WriteRouteMapGif({{GradedRoutes(3, 2, 3), "step 1"}}, kTasks, {}, {}, path);
  EXPECT_NE(status.message().find("3 task rows but 4 task names"), std::string::npos) << status;

  status = WriteRouteMapGif({{GradedRoutes(4, 2, 3), "step 1"}}, kTasks, {}, {}, path, {}, -10);
  EXPECT_NE(status.message().find("frame delay -10 ms"), std::string::npos) << status;

  EXPECT_EQ(ReadFileBytes(path).value_or(""), *before);
  EXPECT_TRUE(testing::TemporarySiblings(path).empty());

  const std::string unwritable = dir + "/no_such_dir/routes.gif";
  status = WriteRouteMapGif({{GradedRoutes(4, 2, 3), "step 1"}}, kTasks, {}, {}, unwritable);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(unwritable), std::string::npos) << status;
}

// A run directory with evaluations at `steps`, each holding routes [4, 2, 3] filled with
// step / 1000 in `file_name` and the rows' task names.
std::string MakeRun(const std::string& name, const std::vector<int>& steps,
                    const std::string& file_name = kRoutesFile) {
  const std::string run = FreshDir(name);
  for (int step : steps) {
    const std::string eval = run + "/evals/step_" + std::to_string(step);
    fs::create_directories(eval);
    EXPECT_TRUE(WriteNpy(eval + "/" + file_name, at::full({4, 2, 3}, step / 1000.0)).ok());
    EXPECT_TRUE(TaskTable::WriteNames(kTasks, eval + "/route_tasks.json").ok());
  }
  return run;
}

TEST(RouteEvolutionTest, ReadsEvaluationsInStepOrder) {
  const std::string run = MakeRun("run_order", {1000, 500, 1500});
  fs::create_directories(run + "/evals/not_a_step");
  fs::create_directories(run + "/evals/step_x1");
  // Other route views and files beside route.npy are not frames.
  ASSERT_TRUE(WriteNpy(run + "/evals/step_500/" + kRoutesT1File, at::zeros({4, 2, 3})).ok());
  const std::string later = run + "/evals/step_2000";
  fs::create_directories(later);
  ASSERT_TRUE(WriteNpy(later + "/" + kRoutesFile, at::full({4, 2, 3}, 0.75)).ok());
  ASSERT_TRUE(TaskTable::WriteNames(kTasks, later + "/route_tasks.json").ok());

  absl::StatusOr<RouteEvolution> evolution = ReadRouteEvolution(run);
  ASSERT_TRUE(evolution.ok()) << evolution.status();
  EXPECT_EQ(evolution->steps, (std::vector<int64_t>{500, 1000, 1500, 2000}));
  EXPECT_EQ(evolution->task_names, kTasks);
  ASSERT_EQ(evolution->frames.size(), 4u);
  EXPECT_EQ(evolution->frames[0].title, "step 500");
  EXPECT_EQ(evolution->frames[3].title, "step 2000");
  EXPECT_FLOAT_EQ(evolution->frames[0].routes.values[0], 0.5f);
  EXPECT_FLOAT_EQ(evolution->frames[1].routes.values[5], 1.0f);
  EXPECT_FLOAT_EQ(evolution->frames[3].routes.values[0], 0.75f);
  EXPECT_EQ(evolution->frames[2].routes.layers, 2);

  const std::string gif_path = run + "/routes.gif";
  RouteEvolutionOptions options;
  options.categories = kCategories;
  options.layer_labels = kLayers;
  ASSERT_TRUE(WriteRouteEvolutionGif(run, gif_path, options).ok());
  const DecodedGif gif = DecodeGif(gif_path);
  ASSERT_TRUE(gif.ok);
  EXPECT_EQ(gif.frames.size(), 4u);
  EXPECT_EQ(gif.delays_cs, (std::vector<int>{20, 20, 20, 20}));
}

TEST(RouteEvolutionTest, ErrorsNameTheRunOrFileAndKeepTheOldGif) {
  const std::string empty = FreshDir("run_without_evals");
  absl::Status status = ReadRouteEvolution(empty).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find(empty + "/evals"), std::string::npos) << status;
  fs::create_directories(empty + "/evals/other");
  status = ReadRouteEvolution(empty).status();
  EXPECT_NE(status.message().find("holds no evaluation"), std::string::npos) << status;

  const std::string run = MakeRun("run_errors", {100, 200});
  const std::string gif_path = run + "/routes.gif";
  ASSERT_TRUE(WriteRouteEvolutionGif(run, gif_path).ok());
  const std::string before = ReadFileBytes(gif_path).value_or("");
  ASSERT_FALSE(before.empty());

  const std::string step_200 = run + "/evals/step_200/";
  ASSERT_TRUE(WriteFileAtomically(step_200 + kRoutesFile, "not an npy file").ok());
  status = WriteRouteEvolutionGif(run, gif_path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(step_200 + kRoutesFile), std::string::npos) << status;

  ASSERT_TRUE(WriteNpy(step_200 + kRoutesFile, at::zeros({4, 6}, at::kFloat)).ok());
  status = ReadRouteEvolution(run).status();
  EXPECT_NE(status.message().find(step_200 + kRoutesFile), std::string::npos) << status;

  ASSERT_TRUE(WriteNpy(step_200 + kRoutesFile, at::zeros({4, 3, 3}, at::kFloat)).ok());
  status = WriteRouteEvolutionGif(run, gif_path);
  EXPECT_NE(status.message().find(step_200 + kRoutesFile + " holds routes [4, 3, 3] but"),
            std::string::npos)
      << status;

  ASSERT_TRUE(WriteNpy(step_200 + kRoutesFile, at::zeros({4, 2, 3}, at::kFloat)).ok());
  ASSERT_TRUE(TaskTable::WriteNames({"a", "b", "c", "d"}, step_200 + "route_tasks.json").ok());
  status = ReadRouteEvolution(run).status();
  EXPECT_NE(status.message().find("names other tasks"), std::string::npos) << status;

  ASSERT_TRUE(TaskTable::WriteNames({"a", "b"}, step_200 + "route_tasks.json").ok());
  status = ReadRouteEvolution(run).status();
  EXPECT_NE(status.message().find("names 2 tasks but"), std::string::npos) << status;

  fs::remove(step_200 + kRoutesFile);
  status = ReadRouteEvolution(run).status();
  EXPECT_NE(status.message().find("holds no route.npy"), std::string::npos)
      << status;
  EXPECT_EQ(ReadFileBytes(gif_path).value_or(""), before);
}

TEST(RouteEvolutionTest, OntologyAndLayerLabelsOfTheRun) {
  const std::string run = FreshDir("run_config");
  const std::string data_dir = FreshDir("run_config_data");
  ASSERT_TRUE(WriteFileAtomically(run + "/experiment.pbtxt",
                                  "data { data_dir: \"" + data_dir + "\" }\n")
                  .ok());
  EXPECT_EQ(RunOntologyPath(run).value_or("?"), "");
  ASSERT_TRUE(WriteFileAtomically(data_dir + "/ontology.json", "{}").ok());
  EXPECT_EQ(RunOntologyPath(run).value_or("?"), data_dir + "/ontology.json");
  ASSERT_TRUE(WriteFileAtomically(run + "/experiment.pbtxt",
                                  "data { data_dir: \"" + data_dir +
                                      "\" ontology: \"elsewhere.json\" }\n")
                  .ok());
  EXPECT_EQ(RunOntologyPath(run).value_or("?"), "elsewhere.json");
  EXPECT_EQ(RunOntologyPath(data_dir).value_or("?"), "");  // no experiment.pbtxt
  ASSERT_TRUE(WriteFileAtomically(data_dir + "/experiment.pbtxt", "data { nonsense: 1 }").ok());
  const absl::Status status = RunOntologyPath(data_dir).status();
  EXPECT_NE(status.message().find(data_dir + "/experiment.pbtxt"), std::string::npos) << status;

  EXPECT_TRUE(RunLayerLabels(run, 3).empty());
  fs::create_directories(run + "/best");
  ASSERT_TRUE(WriteFileAtomically(
                  run + "/best/config.json",
                  R"({"vocab_size": 96, "d_model": 32, "encoder_layers": 2, "decoder_layers": 1,
                      "encoder_attention_heads": 4, "decoder_attention_heads": 4,
                      "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
                      "max_position_embeddings": 64})")
                  .ok());
  EXPECT_EQ(RunLayerLabels(run, 3), (std::vector<std::string>{"enc0", "enc1", "dec0"}));
  EXPECT_TRUE(RunLayerLabels(run, 4).empty());  // another model's config
}

}  // namespace
}  // namespace taskmoe
