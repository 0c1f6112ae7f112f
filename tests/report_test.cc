// The HTML report (moe/report): a synthetic run directory and a synthetic pipeline output give
// well-formed, self-contained pages (balanced tags, every image an inline data: URI, no
// script, no network or file reference) with the expected sections and values; missing files
// become notes; the report never replaces one of its inputs; the tool's command line.
#include "moe/report/report.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/drawing/route_map.h"
#include "moe/formats/npy.h"
#include "moe/report/html.h"
#include "moe/train/checkpoint.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(WriteFileAtomically(path, text).ok()) << path;
}

// Empty-content elements of HTML that take no closing tag.
bool IsVoid(const std::string& tag) {
  for (const char* name : {"meta", "img", "br", "hr", "link", "input"}) {
    if (tag == name) return true;
  }
  return false;
}

// "" when every tag of `html` closes in order (a tag stack), else what went wrong. Also checks
// that '<' only starts tags and '&' only starts character references.
std::string TagErrors(const std::string& html) {
  std::vector<std::string> open;
  for (size_t i = 0; i < html.size(); ++i) {
    if (html[i] == '&') {
      const size_t end = html.find(';', i);
      if (end == std::string::npos || end - i > 6) return absl::StrCat("bare & at ", i);
      continue;
    }
    if (html[i] == '>') return absl::StrCat("bare > at ", i);
    if (html[i] != '<') continue;
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return absl::StrCat("unclosed < at ", i);
    const std::string inside = html.substr(i + 1, end - i - 1);
    i = end;
    if (absl::StartsWith(inside, "!")) continue;  // <!DOCTYPE html>
    const bool closing = absl::StartsWith(inside, "/");
    std::string name = inside.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \t\n/"));
    if (name.empty() || !absl::c_all_of(name, absl::ascii_isalnum)) {
      return absl::StrCat("odd tag <", inside, ">");
    }
    if (closing) {
      if (open.empty() || open.back() != name) {
        return absl::StrCat("</", name, "> closes <", open.empty() ? "nothing" : open.back(), ">");
      }
      open.pop_back();
    } else if (!IsVoid(name)) {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : absl::StrCat("<", open.back(), "> never closes");
}

// The src values of every <img>.
std::vector<std::string> ImageSources(const std::string& html) {
  std::vector<std::string> sources;
  for (size_t at = html.find("<img src=\""); at != std::string::npos;
       at = html.find("<img src=\"", at + 1)) {
    const size_t start = at + 10;
    sources.push_back(html.substr(start, html.find('"', start) - start));
  }
  return sources;
}

void ExpectSelfContained(const std::string& html) {
  EXPECT_EQ(TagErrors(html), "");
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>"));
  for (const char* forbidden : {"http://", "https://", "file:", "<script", "<link", "url("}) {
    EXPECT_FALSE(absl::StrContains(html, forbidden)) << forbidden;
  }
  for (const std::string& source : ImageSources(html)) {
    EXPECT_TRUE(absl::StartsWith(source, "data:image/")) << source.substr(0, 40);
  }
  // Links only lead to sections of the page itself.
  for (size_t at = html.find("href=\""); at != std::string::npos;
       at = html.find("href=\"", at + 1)) {
    EXPECT_EQ(html[at + 6], '#') << html.substr(at, 40);
  }
}

// The decoded bytes of every inline PNG.
std::vector<std::string> InlinePngs(const std::string& html) {
  std::vector<std::string> pngs;
  const std::string prefix = "data:image/png;base64,";
  for (const std::string& source : ImageSources(html)) {
    if (!absl::StartsWith(source, prefix)) continue;
    std::string bytes;
    EXPECT_TRUE(absl::Base64Unescape(source.substr(prefix.size()), &bytes));
    pngs.push_back(bytes);
  }
  return pngs;
}

TEST(HtmlTest, EscapingAndBlocks) {
  EXPECT_EQ(HtmlEscape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  EXPECT_EQ(DataUri("image/gif", "GIF"), "data:image/gif;base64,R0lG");
  // A GIF's logical screen of 258 x 3 pixels (little-endian) sizes its <img>.
  EXPECT_EQ(InlineImage("image/gif", std::string("GIF89a\x02\x01\x03\x00", 10), "a<"),
            "<img src=\"data:image/gif;base64,R0lGODlhAgEDAA==\" alt=\"a&lt;\" width=\"258\" "
            "height=\"3\">\n");
  EXPECT_EQ(InlineImage("image/gif", "GIF8", "x"),
            "<img src=\"data:image/gif;base64,R0lGOA==\" "
            "alt=\"x\">\n");
  EXPECT_EQ(HtmlTable({"x", "y"}, {{"<1>"}}),
            "<table>\n<tr><th>x</th><th>y</th></tr>\n<tr><td>&lt;1&gt;</td><td></td></tr>\n"
            "</table>\n");
  EXPECT_EQ(FormatValue(0.5, 2, /*sign=*/true), "+0.50");
  EXPECT_EQ(FormatValue(-0.5, 1, /*sign=*/true), "-0.5");
  EXPECT_EQ(FormatValue(NAN, 2), "undefined");
  const std::string page = HtmlPage("a & b", Details("more <", Element("p", "x>y")));
  EXPECT_EQ(TagErrors(page), "");
  EXPECT_TRUE(absl::StrContains(page, "<title>a &amp; b</title>"));
  EXPECT_EQ(SectionHeading("a b/<c>", "T & U"), "<h2 id=\"a-b--c-\">T &amp; U</h2>\n");
  EXPECT_EQ(Contents({{"x", "X"}, {"y", "Y"}}),
            "<p class=\"contents\"><a href=\"#x\">X</a> · <a href=\"#y\">Y</a></p>\n");
  EXPECT_NE(TagErrors("<p><b></p></b>"), "");  // the checker can fail
  EXPECT_NE(TagErrors("<p>1 < 2</p>"), "");
}

// A run of 4 tasks in 2 categories: t_a, t_b (skill x) routed alike, t_c, t_d (skill y) alike
// and apart from the first two: route-skill rho 1.
class RunReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/report_run";
    fs::remove_all(root_);
    run_ = root_ + "/run";
    const std::string gym = root_ + "/gym";
    Write(gym + "/ontology.json",
          R"({"classification": {"binary": ["t_a", "t_b"]}, "qa": {"lookup": ["t_c", "t_d"]}})");
    Write(gym + "/skills.json", R"({"tasks": [
        {"name": "t_a", "split": "train", "skills": ["x"]},
        {"name": "t_b", "split": "train", "skills": ["x"]},
        {"name": "t_c", "split": "train", "skills": ["y"]},
        {"name": "t_d", "split": "train", "skills": ["y"]}]})");
    Write(run_ + "/experiment.pbtxt",
          absl::StrCat("model { random_init { d_model: 16 } experts: 2 }\n"
                       "data { data_dir: \"",
                       gym, "\" }\nrouting { plugin: \"learned\" }\n",
                       "training { total_steps: 200 seed: 7 }\noutput_dir: \"", run_, "\"\n"));
    TrainerState state;
    state.step = 200;
    state.best_step = 200;
    state.best_dev_performance = 0.55;
    state.history = {{100, 3.5, 3.25, 0.375}, {200, 2.5, 2.75, 0.55}};
    Write(run_ + "/last/trainer_state.json", TrainerStateToJson(state));
    const std::string header = "task_prefix,metric,performance\n";
    Write(run_ + "/evals/step_100/dev_results.csv",
          header + "t_a,ACC,0.5\nt_b,ACC,0.25\nt_c,EM,0.5\nt_d,EM,0.25\n");
    Write(run_ + "/evals/step_200/dev_results.csv",
          header + "t_a,ACC,0.75\nt_b,ACC,0.5\nt_c,EM,0.5\nt_d,EM,0.45\n");
    Write(run_ + "/predict/eval-dev-performance.csv",
          header + "t_a,ACC,0.75\nt_b,ACC,0.5\nt_c,EM,0.5\nt_d,EM,0.45\n");
    Write(run_ + "/predict/eval-test-performance.csv",
          header + "t_a,ACC,0.625\nt_b,ACC,nan\nt_c,EM,0.375\nt_d,EM,0.5\n");
    const at::Tensor routes =
        at::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f})
            .reshape({4, 2, 2});
    fs::create_directories(run_ + "/best");
    ASSERT_TRUE(WriteNpy(run_ + "/best/route.npy", routes).ok());
    Write(run_ + "/best/route_tasks.json", R"({"0": "t_a", "1": "t_b", "2": "t_c", "3": "t_d"})");
    const RouteTable table{
        std::vector<float>(routes.data_ptr<float>(), routes.data_ptr<float>() + 16), 4, 2, 2};
    ASSERT_TRUE(WriteRouteMapPng(table, {"t_a", "t_b", "t_c", "t_d"}, {}, {"enc0", "dec0"},
                                 run_ + "/best/route.png")
                    .ok());
    Write(run_ + "/routes.gif", "GIF89a-not-really");
  }

  std::string root_;
  std::string run_;
};

TEST_F(RunReportTest, SectionsAndValues) {
  const absl::StatusOr<WrittenReport> written = WriteReport(run_);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->kind, "run");
  EXPECT_EQ(written->path, run_ + "/report.html");
  EXPECT_TRUE(written->notes.empty()) << written->notes.front();
  const std::string html = ReadAll(written->path);
  ExpectSelfContained(html);
  for (const char* section :
       {"<h2 id=\"config\">Configuration</h2>", "<h2 id=\"curves\">Training curves</h2>",
        "<h2 id=\"categories\">Dev and test performance per category</h2>",
        "<h2 id=\"routes\">Routes</h2>", "<h3>Route evolution</h3>",
        "<h2 id=\"agreement\">Route–skill agreement</h2>",
        "<h2 id=\"inputs\">Inputs and notes</h2>", "<a href=\"#curves\">Training curves</a>"}) {
    EXPECT_TRUE(absl::StrContains(html, section)) << section;
  }
  EXPECT_TRUE(absl::StrContains(html, "random init: d_model 16, 2+2 layers")) << html;
  EXPECT_TRUE(absl::StrContains(html, "best dev performance 0.5500 at step 200"));
  // classification: dev (0.75 + 0.5) / 2, test (0.625 + nan as 0) / 2; qa: (0.5 + 0.45) / 2.
  EXPECT_TRUE(absl::StrContains(
      html, "<td>classification</td><td>2</td><td>0.6250</td><td>0.3125</td><td></td>"));
  EXPECT_TRUE(absl::StrContains(html, "<td>qa</td><td>2</td><td>0.4750</td><td>0.4375</td>"));
  EXPECT_TRUE(absl::StrContains(html, "<td>all tasks</td><td>4</td><td>0.5500</td>"));
  // rho 1 over the 6 pairs of 4 tasks; 999 permutations.
  EXPECT_TRUE(absl::StrContains(html, "<td>1.0000</td>")) << html;
  EXPECT_TRUE(absl::StrContains(html, "<td>999</td>"));
  EXPECT_TRUE(absl::StrContains(html, "Mantel permutation test"));
  EXPECT_TRUE(absl::StrContains(html, "data:image/gif;base64,"));
  // The route map, the loss plot and the performance plot, each a whole PNG.
  const std::vector<std::string> pngs = InlinePngs(html);
  ASSERT_EQ(pngs.size(), 3u);
  for (const std::string& png : pngs) EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(pngs[2], ReadAll(run_ + "/best/route.png"));
  EXPECT_TRUE(absl::StrContains(html,
                                "alt=\"train and dev loss per step\" width=\"900\" "
                                "height=\"320\">"));
}

TEST_F(RunReportTest, MissingFilesBecomeNotes) {
  fs::remove_all(run_ + "/predict");
  fs::remove_all(run_ + "/evals");
  fs::remove(run_ + "/routes.gif");
  const absl::StatusOr<WrittenReport> written = WriteReport(run_);
  ASSERT_TRUE(written.ok()) << written.status();
  ASSERT_EQ(written->notes.size(), 4u);
  EXPECT_TRUE(absl::StrContains(written->notes[0],
                                "dev scores of the best checkpoint: left out, "
                                "no " +
                                    run_ + "/predict/"));
  const std::string html = ReadAll(written->path);
  ExpectSelfContained(html);
  EXPECT_TRUE(absl::StrContains(html, "No final predictions"));
  EXPECT_FALSE(absl::StrContains(html, "data:image/gif"));
}

TEST_F(RunReportTest, NeverWritesOverAnInput) {
  const std::string route_map = ReadAll(run_ + "/best/route.png");
  for (const std::string& output :
       {run_ + "/best/route.png", run_ + "/best/../best/route.png", run_ + "/experiment.pbtxt"}) {
    ReportOptions options;
    options.output = output;
    const absl::Status status = WriteReport(run_, options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << output;
    EXPECT_TRUE(absl::StrContains(status.message(), "would overwrite the input"))
        << status;
  }
  EXPECT_EQ(ReadAll(run_ + "/best/route.png"), route_map);
  ReportOptions options;
  options.output = run_ + "/best";
  EXPECT_TRUE(absl::StrContains(WriteReport(run_, options).status().message(), "is a directory"));
  EXPECT_TRUE(absl::StrContains(WriteReport(root_ + "/gym").status().message(),
                                "is neither a trainer run directory"));
}

TEST_F(RunReportTest, TheToolWritesWhereItIsTold) {
  const std::string output = root_ + "/elsewhere.html";
  testing::ToolResult result =
      testing::RunToolBinary("report", absl::StrCat("--dir=", run_, " --output=", output));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(absl::StrContains(result.output, "wrote the run report " + output));
  EXPECT_EQ(TagErrors(ReadAll(output)), "");
  result = testing::RunToolBinary("report", "--dir=" + root_ + "/none");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(result.output, "report: " + root_ + "/none is not a directory"))
      << result.output;
}

// A pipeline output: one statistics file (a comparison with an undefined ARG), a learned arm and
// a null arm (route-skill agreement and held-out neighbours), timings and a markdown report.
TEST(PipelineReportTest, TablesForestPlotsAndNulls) {
  const std::string dir = ::testing::TempDir() + "/report_pipeline";
  fs::remove_all(dir);
  Write(dir + "/finetune_stats.json", R"({
    "bootstrap_draws": 2000, "seed": 1,
    "arms": [{"name": "dense", "test_points": {"mean": 66.77, "ci95": [59.99, 73.57]},
              "n_seeds": 5, "n_tasks": 9, "n_samples": 45}],
    "comparisons": [
      {"name": "two_stage vs dense", "group": "all",
       "delta": {"mean": 3.367, "ci95": [0.5236, 6.7156]},
       "arg": {"mean": 0.07731, "ci95": [0.006986, 0.17506]},
       "ratio_of_means": {"mean": 1.0504, "ci95": [1.0076, 1.1066]},
       "p_value": 0.0019998, "p_value_holm": 0.025997, "n_seeds": 5, "n_tasks": 9,
       "n_samples": 45, "zero_baseline_tasks": []},
      {"name": "two_stage vs dense", "group": "control",
       "delta": {"mean": -1.5, "ci95": [-2.5, -0.5]},
       "arg": {"mean": null, "ci95": [null, null]},
       "ratio_of_means": {"mean": 0.98, "ci95": [0.97, 0.99]},
       "p_value": 0.5547, "p_value_holm": 1, "n_seeds": 5, "n_tasks": 2, "n_samples": 10,
       "zero_baseline_tasks": ["1/task16"]}]})");
  // The calibration-only statistics of the dev tasks: arms, no comparisons.
  Write(dir + "/finetune_dev_stats.json", R"({"bootstrap_draws": 2000, "seed": 1,
    "arms": [{"name": "dense", "test_points": {"mean": 48.5, "ci95": [40.25, 56.75]},
              "n_seeds": 5, "n_tasks": 4, "n_samples": 20}], "comparisons": []})");
  const std::string agreement = R"({"basis": "skills", "skills": "gym/skills.json",
    "permutations": 999, "seed": 1,
    "files": [{"routes": "a/1/best/route.npy", "spearman_rho": RHO, "p_value": 0.001,
               "partial_spearman_rho": null, "partial_p_value": null}],
    "mean": {"n_files": 1, "spearman_rho": {"mean": RHO, "ci95": [0.1, 0.3], "n": 1}}})";
  Write(dir + "/routes_stage_one.json", absl::StrReplaceAll(agreement, {{"RHO", "0.2"}}));
  Write(dir + "/routes_task_random.json", absl::StrReplaceAll(agreement, {{"RHO", "0.05"}}));
  // Held-out neighbours of a learned arm and of the untrained null (every task's routes).
  const std::string neighbours = R"({"basis": "skills", "skills": "gym/skills.json",
    "permutations": 999, "seed": 1,
    "files": [{"routes": "all_routes/a/1/route.npy", "spearman_rho": 0.3, "p_value": 0.001,
               "held_out": {"n_held_out": 13, "n_train": 29, "fraction_sharing_skill": SHARE,
                            "null_mean": 0.1846, "p_value": 0.0007}}],
    "mean": {"n_files": 1, "held_out_fraction": {"mean": SHARE, "ci95": [LOW, 0.9231], "n": 1}}})";
  Write(dir + "/neighbours_untrained.json",
        absl::StrReplaceAll(neighbours, {{"SHARE", "0.8769"}, {"LOW", "0.8154"}}));
  Write(dir + "/neighbours_stage_one.json",
        absl::StrReplaceAll(neighbours, {{"SHARE", "0.8462"}, {"LOW", "0.7846"}}));
  Write(dir + "/timings.tsv",
        "upstream_dense_1\t60\nphase: upstream arms\t600\nphase: tables\t30\n");
  Write(dir + "/report.md", "# Gym <report>\n");
  ReportOptions options;
  options.pipeline.null_arms = {"task_random", "untrained"};
  const absl::StatusOr<WrittenReport> written = WriteReport(dir, options);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->kind, "pipeline");
  const std::string html = ReadAll(dir + "/report.html");
  ExpectSelfContained(html);
  EXPECT_TRUE(absl::StrContains(
      html, "<h2 id=\"finetune\">Few-shot fine-tuning of the held-out tasks</h2>"));
  EXPECT_TRUE(absl::StrContains(html,
                                "<td>dense</td><td>5</td><td>9</td><td>45</td>"
                                "<td>66.77 [59.99, 73.57]</td>"));
  // The dev tasks' calibration table follows the pipeline's own result trees.
  const size_t finetune = html.find("<h2 id=\"finetune\">");
  const size_t finetune_dev = html.find(
      "<h2 id=\"finetune_dev\">Dense few-shot fine-tuning of the held-out dev tasks "
      "(calibration)</h2>");
  ASSERT_NE(finetune_dev, std::string::npos) << html;
  EXPECT_LT(finetune, finetune_dev);
  EXPECT_TRUE(absl::StrContains(html,
                                "<td>dense</td><td>5</td><td>4</td><td>20</td>"
                                "<td>48.50 [40.25, 56.75]</td>"));
  EXPECT_TRUE(absl::StrContains(html,
                                "<td>+3.37 [+0.52, +6.72]</td><td>+7.73% [+0.70%, +17.51%]"
                                "</td><td>1.0504 [1.0076, 1.1066]</td><td>0.002</td>"
                                "<td>0.026</td>"))
      << html;
  EXPECT_TRUE(absl::StrContains(html, "<td>-1.50 [-2.50, -0.50]</td><td>undefined</td>"));
  // Null arms come last and are marked.
  const size_t learned = html.find(
      "<td>stage_one</td><td></td><td>1</td><td>0.2000 [0.1000, "
      "0.3000]</td><td>0.200 (p 0.001)</td>");
  const size_t null = html.find("<td>task_random</td><td>null</td>");
  ASSERT_NE(learned, std::string::npos) << html;
  ASSERT_NE(null, std::string::npos);
  EXPECT_LT(learned, null);
  // The held-out neighbours: the learned arm, then the null.
  const size_t neighbour = html.find(
      "<td>stage_one</td><td></td><td>1</td><td>0.846 [0.785, 0.923]</td>"
      "<td>0.846 (p 0.0007)</td><td>0.185</td>");
  const size_t neighbour_null =
      html.find("<td>untrained</td><td>null</td><td>1</td><td>0.877 [0.815, 0.923]</td>");
  ASSERT_NE(neighbour, std::string::npos) << html;
  ASSERT_NE(neighbour_null, std::string::npos) << html;
  EXPECT_LT(html.find("<h2 id=\"neighbours\">"), neighbour);
  EXPECT_LT(neighbour, neighbour_null);
  EXPECT_TRUE(absl::StrContains(html, "<td>upstream arms</td><td>10.0</td>"));
  EXPECT_TRUE(absl::StrContains(html, "<td>all phases</td><td>10.5</td>"));
  EXPECT_TRUE(absl::StrContains(html, "# Gym &lt;report&gt;"));
  // Forest plots of delta, ARG, rho and the held-out neighbours' share.
  const std::vector<std::string> pngs = InlinePngs(html);
  ASSERT_EQ(pngs.size(), 4u);
  for (const std::string& png : pngs) EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
}

TEST(PipelineReportTest, UnreadableFilesBecomeNotes) {
  const std::string dir = ::testing::TempDir() + "/report_broken_pipeline";
  fs::remove_all(dir);
  Write(dir + "/upstream_stats.json", "{not json");
  Write(dir + "/routes_learned.json", R"({"files": [{"routes": 3}]})");
  const absl::StatusOr<WrittenReport> written = WriteReport(dir);
  ASSERT_TRUE(written.ok()) << written.status();
  ASSERT_GE(written->notes.size(), 2u);
  EXPECT_EQ(written->notes[0], dir + "/upstream_stats.json: left out, not a JSON object");
  EXPECT_TRUE(absl::StartsWith(written->notes[1], dir + "/routes_learned.json: left out, "));
  ExpectSelfContained(ReadAll(written->path));
}

}  // namespace
}  // namespace taskmoe
