#include "moe/report/run_page.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "moe/drawing/line_plot.h"
#include "moe/drawing/route_map.h"
#include "moe/report/html.h"
#include "moe/train/run_report.h"

namespace taskmoe {
namespace {

constexpr int kPlotWidth = 900;
constexpr int kPlotHeight = 320;

std::string ModelText(const ModelConfig& model) {
  switch (model.source_case()) {
    case ModelConfig::kHfDir:
      return absl::StrCat("from the Hugging Face directory ", model.hf_dir());
    case ModelConfig::kCheckpoint:
      return absl::StrCat("from the checkpoint ", model.checkpoint());
    case ModelConfig::kRandomInit: {
      const RandomInit& r = model.random_init();
      return absl::StrFormat("random init: d_model %d, %d+%d layers, %d heads, FFN %d", r.d_model(),
                             r.encoder_layers(), r.decoder_layers(), r.attention_heads(),
                             r.ffn_dim());
    }
    default:
      return "not set";
  }
}

std::string TaskVectorText(const TaskVectorConfig& vectors) {
  std::string source;
  switch (vectors.source_case()) {
    case TaskVectorConfig::kDir:
      source = absl::StrCat("from ", vectors.dir());
      break;
    case TaskVectorConfig::kRandom:
      source = absl::StrCat("random vectors, dim ", vectors.dim());
      break;
    case TaskVectorConfig::kMethod:
      source = absl::StrCat("method ", vectors.method().name());
      break;
    default:
      source = "not set";
  }
  return absl::StrCat(source, vectors.trainable() ? ", trained" : ", frozen");
}

// The full name of the plugin params message, e.g. taskmoe.LearnedRoutingParams.
std::string ParamsType(const RoutingConfig& routing) {
  if (!routing.has_params()) return "";
  const std::string& url = routing.params().type_url();
  return absl::StrCat(" (", url.substr(url.rfind('/') + 1), ")");
}

std::string SummaryParagraph(const RunRecord& record) {
  std::string text = absl::StrCat("Run directory ", record.dir, ".");
  if (record.state.has_value()) {
    absl::StrAppend(
        &text,
        absl::StrFormat(" %d steps; best dev performance %s at step %d (mean over tasks of "
                        "each task's metric).",
                        record.state->step, FormatValue(record.state->best_dev_performance, 4),
                        record.state->best_step));
  }
  if (!record.test_scores.empty()) {
    absl::StrAppend(&text, " Test performance of the best checkpoint: ",
                    FormatValue(MeanPerformance(record.test_scores), 4), " over ",
                    record.test_scores.size(), " tasks.");
  }
  return Element("p", text);
}

std::string ConfigSection(const RunRecord& record) {
  std::string html = SectionHeading("config", "Configuration");
  if (record.config.has_value()) {
    html += HtmlTable({"field", "value"}, ConfigSummaryRows(*record.config));
  }
  html += Details("experiment.pbtxt (the whole config)",
                  absl::StrCat("<pre>", HtmlEscape(record.experiment_text), "</pre>\n"));
  return html;
}

// Mean dev performance per category at every evaluation, one series per category.
std::vector<PlotSeries> CategorySeries(const RunRecord& record) {
  std::map<std::string, PlotSeries> by_category;
  for (const auto& [step, scores] : record.evaluations) {
    for (const CategoryPerformance& c : PerCategoryPerformance(scores, record.ontology)) {
      PlotSeries& series = by_category[c.category];
      series.name = c.category;
      series.x.push_back(step);
      series.y.push_back(c.performance);
    }
  }
  std::vector<PlotSeries> series;
  for (auto& [name, s] : by_category) series.push_back(std::move(s));
  return series;
}

std::string CurvesSection(const RunRecord& record) {
  std::string html = SectionHeading("curves", "Training curves");
  if (!record.state.has_value() || record.state->history.empty()) {
    return html + Note("No evaluation during training (see the notes at the end).");
  }
  LinePlot losses{"Loss per target token", "step", "loss", {}, kPlotWidth, kPlotHeight};
  PlotSeries train{"train loss"};
  PlotSeries dev{"dev loss", {}, {}, /*dashed=*/true};
  LinePlot performance{"Dev performance", "step", "performance", {}, kPlotWidth, kPlotHeight};
  PlotSeries mean{"mean over tasks"};
  for (const EvalRecord& r : record.state->history) {
    train.x.push_back(r.step);
    train.y.push_back(r.train_loss);
    dev.x.push_back(r.step);
    dev.y.push_back(r.dev_loss);
    mean.x.push_back(r.step);
    mean.y.push_back(r.dev_performance);
  }
  losses.series = {train, dev};
  performance.series = {mean};
  for (PlotSeries& series : CategorySeries(record)) {
    series.dashed = true;
    performance.series.push_back(std::move(series));
  }
  html += InlinePngOrNote(LinePlotPng(losses), "train and dev loss per step");
  html += Note(
      "Train loss: mean per target token since the previous evaluation; dev loss: per "
      "target token on the dev examples of the evaluation.");
  html += InlinePngOrNote(LinePlotPng(performance), "dev performance per step");
  html += Note(
      "Dev performance: mean over the train tasks of each task's metric (dashed: mean "
      "per ontology category, from evals/step_N/dev_results.csv).");
  return html;
}

std::string UndefinedText(const CategoryPerformance& c) {
  return c.undefined_tasks > 0 ? absl::StrCat(c.undefined_tasks, " of ", c.tasks) : "";
}

std::string CategorySection(const RunRecord& record) {
  std::string html = SectionHeading("categories", "Dev and test performance per category");
  if (record.dev_scores.empty()) return html + Note("No final predictions (predict/).");
  std::map<std::string, CategoryPerformance> test;
  for (const CategoryPerformance& c : PerCategoryPerformance(record.test_scores, record.ontology)) {
    test[c.category] = c;
  }
  std::vector<std::vector<std::string>> rows;
  for (const CategoryPerformance& c : PerCategoryPerformance(record.dev_scores, record.ontology)) {
    const auto t = test.find(c.category);
    rows.push_back({c.category, absl::StrCat(c.tasks), FormatValue(c.performance, 4),
                    t == test.end() ? "" : FormatValue(t->second.performance, 4),
                    UndefinedText(c)});
  }
  rows.push_back(
      {"all tasks", absl::StrCat(record.dev_scores.size()),
       FormatValue(MeanPerformance(record.dev_scores), 4),
       record.test_scores.empty() ? "" : FormatValue(MeanPerformance(record.test_scores), 4), ""});
  html +=
      HtmlTable({"category", "tasks", "dev", "test", "dev metric undefined (counted as 0)"}, rows);
  html += Note(
      "Scores of the best checkpoint's final predictions (predict/eval-*-performance.csv), "
      "each task with its own metric, averaged per ontology category.");
  std::map<std::string, double> test_by_task;
  for (const TaskScore& s : record.test_scores) test_by_task[s.task] = s.performance;
  std::vector<std::vector<std::string>> task_rows;
  for (const TaskScore& s : record.dev_scores) {
    const std::string category =
        record.ontology.has_value() ? record.ontology->CategoryOf(s.task) : "";
    const auto t = test_by_task.find(s.task);
    task_rows.push_back({s.task, category.empty() ? kUnlistedCategory : category, s.metric,
                         FormatValue(s.performance, 4),
                         t == test_by_task.end() ? "" : FormatValue(t->second, 4)});
  }
  return html +
         Details("Every task", HtmlTable({"task", "category", "metric", "dev", "test"}, task_rows));
}

std::string RoutesSection(const RunRecord& record) {
  std::string html = SectionHeading("routes", "Routes");
  if (!record.route_map_png.empty()) {
    html += InlineImage("image/png", record.route_map_png, "route map");
    html += Note(absl::StrCat("Soft routes (", record.routes_dir,
                              "/route.png): one row per train task, grouped by ontology category; "
                              "one column per expert of each layer; colour: route weight."));
  }
  if (!record.routes_gif.empty()) {
    html += Element("h3", "Route evolution");
    html += InlineImage("image/gif", record.routes_gif, "route maps of every evaluation");
    html += Note("routes.gif: the soft route map of every evaluation, one frame per step.");
  }
  return html;
}

std::string AgreementSection(const RunRecord& record) {
  std::string html = SectionHeading("agreement", "Route–skill agreement");
  if (!record.agreement.has_value()) return html + Note("Not measured (see the notes at the end).");
  const RunRouteAgreement& a = *record.agreement;
  if (!a.note.empty()) return html + Note(absl::StrCat("Route-skill agreement: ", a.note));
  const bool categories = a.basis == "categories";
  html += HtmlTable(
      {"routes", "similar tasks share", "Spearman rho", "p", "permutations"},
      {{record.routes_dir + "/route.npy",
        categories ? "an ontology category" : absl::StrCat("skills (", a.skills_source, ")"),
        FormatValue(a.rho, 4), FormatValue(a.p_value, 4), absl::StrCat(a.permutations)}});
  html += Note(absl::StrCat(
      "Spearman rho over every pair of routed tasks between route similarity (1 - the mean over "
      "layers of the total-variation distance of the two tasks' routes) and ",
      categories ? "category similarity (1 for two tasks of one category, else 0)"
                 : "skill similarity (Jaccard overlap of the two tasks' skill sets)",
      ". Null: task pairs are not independent, so p is a Mantel permutation test: the task labels "
      "are permuted ",
      a.permutations, " times, and p = (1 + #{permuted rho >= observed}) / (1 + ", a.permutations,
      "), one-sided. Under the null rho centres on 0."));
  return html;
}

std::string NotesSection(const RunRecord& record) {
  std::string html = SectionHeading("inputs", "Inputs and notes");
  std::string files;
  for (const std::string& file : record.inputs.files) files += Element("li", file);
  html += Details(absl::StrCat(record.inputs.files.size(), " files read"),
                  absl::StrCat("<ul>\n", files, "</ul>\n"));
  for (const std::string& note : record.inputs.notes) html += Note(note);
  return html;
}

}  // namespace

std::vector<std::vector<std::string>> ConfigSummaryRows(const ExperimentConfig& config) {
  const TrainingConfig& t = config.training();
  const OptimizerConfig& o = config.optimizer();
  const EvaluationConfig& e = config.evaluation();
  return {
      {"model", ModelText(config.model())},
      {"experts per layer", absl::StrCat(config.model().experts())},
      {"routing", absl::StrCat(config.routing().plugin(), ParamsType(config.routing()))},
      {"task vectors", TaskVectorText(config.task_vectors())},
      {"data", config.data().data_dir()},
      {"steps", absl::StrCat(t.total_steps(), " (warmup ", t.warmup_ratio() * 100, "%)")},
      {"batch", absl::StrCat(t.train_batch_size(), " x ", t.gradient_accumulation_steps(),
                             " accumulation steps")},
      {"learning rates", absl::StrCat("model ", o.lr(), ", router ", o.router_lr(),
                                      ", task vectors ", o.task_vector_lr())},
      {"seed, device", absl::StrCat(t.seed(), ", ", t.device())},
      {"evaluation",
       absl::StrCat("every ", e.eval_period(), " steps, ", e.num_beams(),
                    "-beam search, dev examples per task: ",
                    e.max_dev_examples() == 0 ? "all" : absl::StrCat(e.max_dev_examples()))},
      {"output", config.output_dir()},
  };
}

std::string RunReportHtml(const RunRecord& record) {
  const std::string contents = Contents({{"config", "Configuration"},
                                         {"curves", "Training curves"},
                                         {"categories", "Performance per category"},
                                         {"routes", "Routes"},
                                         {"agreement", "Route–skill agreement"},
                                         {"inputs", "Inputs and notes"}});
  const std::string body =
      absl::StrCat(contents, SummaryParagraph(record), ConfigSection(record), CurvesSection(record),
                   CategorySection(record), RoutesSection(record), AgreementSection(record),
                   NotesSection(record));
  return HtmlPage(absl::StrCat("TaskMoE run report: ", record.dir), body);
}

}  // namespace taskmoe
