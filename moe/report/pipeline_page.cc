#include "moe/report/pipeline_page.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "moe/drawing/forest_plot.h"
#include "moe/report/html.h"

namespace taskmoe {
namespace {

constexpr int kForestWidth = 1000;

std::string TitleOf(const std::string& name) {
  static const std::map<std::string, std::string> kTitles = {
      {"upstream", "Upstream: test scores of the train tasks"},
      {"finetune", "Few-shot fine-tuning of the held-out tasks"},
      {"finetune_dev", "Dense few-shot fine-tuning of the held-out dev tasks (calibration)"},
      {"zero_shot", "Zero-shot evaluation of the held-out tasks"}};
  const auto found = kTitles.find(name);
  return found == kTitles.end() ? name : found->second;
}

// "mean [low, high]" of `estimate` times `scale`, each with `decimals` digits and `suffix`.
std::string IntervalText(const IntervalEstimate& estimate, int decimals, bool sign,
                         double scale = 1, const std::string& suffix = "") {
  if (std::isnan(estimate.mean)) return "undefined";
  const auto value = [&](double v) { return FormatValue(scale * v, decimals, sign) + suffix; };
  return absl::StrCat(value(estimate.mean), " [", value(estimate.low), ", ", value(estimate.high),
                      "]");
}

std::string PValue(double p) { return std::isnan(p) ? "undefined" : absl::StrFormat("%.4g", p); }

std::string ComparisonLabel(const ComparisonRow& c) {
  return c.group == "all" || c.group.empty() ? c.name : absl::StrCat(c.name, " (", c.group, ")");
}

// A forest plot of one estimate of every comparison, coloured by group.
ForestPlot ComparisonForest(const StatisticsFile& file, bool arg) {
  ForestPlot plot;
  plot.title = absl::StrCat(TitleOf(file.name), arg ? ": ARG" : ": delta");
  plot.axis_label =
      arg ? "average relative gain (%) [95% CI]" : "delta test score (points) [95% CI]";
  plot.width = kForestWidth;
  std::vector<std::string> groups;
  for (const ComparisonRow& c : file.comparisons) {
    auto group = std::find(groups.begin(), groups.end(), c.group);
    if (group == groups.end()) group = groups.insert(groups.end(), c.group);
    const IntervalEstimate& e = arg ? c.arg : c.delta;
    const double scale = arg ? 100 : 1;
    plot.rows.push_back({ComparisonLabel(c), scale * e.mean, scale * e.low, scale * e.high,
                         IntervalText(e, 2, /*sign=*/true, scale, arg ? "%" : ""),
                         static_cast<size_t>(group - groups.begin())});
  }
  return plot;
}

std::string StatisticsSection(const StatisticsFile& file) {
  std::string html = SectionHeading(file.name, TitleOf(file.name));
  html += Note(absl::StrFormat(
      "From %s: 95%% intervals from a hierarchical bootstrap (seeds, tasks, few-shot samples; %d "
      "draws, seed %d); p: paired sign-flip test over seed x task, Holm-adjusted over every p of "
      "the file.",
      file.path, file.bootstrap_draws, file.seed));
  std::vector<std::vector<std::string>> arms;
  for (const ArmScoreRow& a : file.arms) {
    arms.push_back({a.name, absl::StrCat(a.n_seeds), absl::StrCat(a.n_tasks),
                    absl::StrCat(a.n_samples), IntervalText(a.test_points, 2, false)});
  }
  if (!arms.empty()) {
    html += Element("h3", "Arms");
    html += HtmlTable({"arm", "seeds", "tasks", "samples", "test score (points) [95% CI]"}, arms);
  }
  if (file.comparisons.empty()) return html;
  std::vector<std::vector<std::string>> rows;
  for (const ComparisonRow& c : file.comparisons) {
    rows.push_back({c.name, c.group, absl::StrCat(c.n_seeds), absl::StrCat(c.n_tasks),
                    absl::StrCat(c.n_samples), IntervalText(c.delta, 2, true),
                    IntervalText(c.arg, 2, true, 100, "%"),
                    IntervalText(c.ratio_of_means, 4, false), PValue(c.p_value),
                    PValue(c.p_value_holm)});
  }
  html += Element("h3", "Comparisons");
  html += HtmlTable({"comparison", "group", "seeds", "tasks", "samples", "delta (points) [95% CI]",
                     "ARG [95% CI]", "ratio of means [95% CI]", "p", "p (Holm)"},
                    rows);
  html +=
      InlinePngOrNote(ForestPlotPng(ComparisonForest(file, /*arg=*/false)), "forest plot of delta");
  html +=
      InlinePngOrNote(ForestPlotPng(ComparisonForest(file, /*arg=*/true)), "forest plot of ARG");
  for (const ComparisonRow& c : file.comparisons) {
    if (c.zero_baseline_tasks.empty() || c.group != "all") continue;
    html += Note(absl::StrCat(c.name,
                              ": baseline task mean 0, relative gain undefined (left out "
                              "of the ARG): ",
                              absl::StrJoin(c.zero_baseline_tasks, ", ")));
  }
  return html;
}

bool IsNull(const std::string& arm, const PipelineReportOptions& options) {
  return std::find(options.null_arms.begin(), options.null_arms.end(), arm) !=
         options.null_arms.end();
}

// The arms in their order, the null arms moved last.
std::vector<const ArmAgreement*> NullsLast(const std::vector<ArmAgreement>& agreements,
                                           const PipelineReportOptions& options) {
  std::vector<const ArmAgreement*> arms;
  for (const ArmAgreement& a : agreements) arms.push_back(&a);
  std::stable_sort(arms.begin(), arms.end(), [&](const ArmAgreement* a, const ArmAgreement* b) {
    return !IsNull(a->arm, options) && IsNull(b->arm, options);
  });
  return arms;
}

std::string AgreementSection(const PipelineRecord& record, const PipelineReportOptions& options) {
  std::string html = SectionHeading("agreement", "Route–skill agreement per arm");
  const std::vector<const ArmAgreement*> arms = NullsLast(record.agreements, options);
  ForestPlot plot;
  plot.title = "Spearman rho of route vs skill similarity, mean over seeds";
  plot.axis_label = "Spearman rho [95% bootstrap CI over seeds]";
  plot.width = kForestWidth;
  std::vector<std::vector<std::string>> rows;
  int64_t permutations = 0;
  for (const ArmAgreement* a : arms) {
    const bool null = IsNull(a->arm, options);
    std::vector<std::string> per_seed;
    for (const RoutesFileAgreement& f : a->files) {
      per_seed.push_back(absl::StrCat(FormatValue(f.rho, 3), " (p ", PValue(f.p_value), ")"));
    }
    rows.push_back({a->arm, null ? "null" : "", absl::StrCat(a->files.size()),
                    IntervalText(a->mean_rho, 4, false), absl::StrJoin(per_seed, ", "),
                    IntervalText(a->mean_partial_rho, 4, false)});
    plot.rows.push_back({null ? absl::StrCat(a->arm, " (null)") : a->arm, a->mean_rho.mean,
                         a->mean_rho.low, a->mean_rho.high, IntervalText(a->mean_rho, 3, false),
                         null ? 1u : 0u});
    permutations = std::max(permutations, a->permutations);
  }
  html += HtmlTable({"arm", "role", "seeds", "mean rho [95% CI]", "rho per seed (permutation p)",
                     "partial rho, task vectors held fixed [95% CI]"},
                    rows);
  html += InlinePngOrNote(ForestPlotPng(plot), "forest plot of route-skill rho per arm");
  html += Note(absl::StrCat(
      "Spearman rho over every pair of the train tasks between route similarity (1 - mean "
      "total-variation distance of the routes over layers) and skill similarity (Jaccard overlap "
      "of skill sets), per seed's best routes (tools/analyze_routes). Per-seed null: a Mantel "
      "test permuting the task labels (up to ",
      permutations,
      " permutations), one-sided p. "
      "Arm-level nulls",
      options.null_arms.empty() ? " (none named)"
                                : absl::StrCat(" (", absl::StrJoin(options.null_arms, ", "), ")"),
      ": routes that owe nothing to training on the tasks; a learned arm agrees with the skills "
      "beyond chance only where its rho clears theirs. Partial rho controls for task-vector "
      "cosine similarity (what the router starts from)."));
  return html;
}

std::string NeighboursSection(const PipelineRecord& record, const PipelineReportOptions& options) {
  std::string html =
      SectionHeading("neighbours", "Held-out tasks' nearest train task in route space");
  std::vector<std::vector<std::string>> rows;
  ForestPlot plot;
  plot.title = "Held-out tasks whose nearest train task shares a skill, mean over seeds";
  plot.axis_label = "share of held-out tasks [95% bootstrap CI over seeds]";
  plot.width = kForestWidth;
  for (const ArmAgreement* arm : NullsLast(record.neighbours, options)) {
    const ArmAgreement& a = *arm;
    const bool null = IsNull(a.arm, options);
    std::vector<std::string> per_seed;
    std::vector<std::string> null_means;
    for (const RoutesFileAgreement& f : a.files) {
      per_seed.push_back(absl::StrCat(FormatValue(f.held_out_fraction, 3), " (p ",
                                      PValue(f.held_out_p_value), ")"));
      null_means.push_back(FormatValue(f.held_out_null_mean, 3));
    }
    rows.push_back({a.arm, null ? "null" : "", absl::StrCat(a.files.size()),
                    IntervalText(a.mean_held_out_fraction, 3, false),
                    absl::StrJoin(per_seed, ", "), absl::StrJoin(null_means, ", ")});
    plot.rows.push_back({null ? absl::StrCat(a.arm, " (null)") : a.arm,
                         a.mean_held_out_fraction.mean, a.mean_held_out_fraction.low,
                         a.mean_held_out_fraction.high,
                         IntervalText(a.mean_held_out_fraction, 3, false), null ? 1u : 0u});
  }
  html += HtmlTable({"arm", "role", "seeds", "share [95% CI]", "share per seed (permutation p)",
                     "permutation null mean per seed"},
                    rows);
  html += InlinePngOrNote(ForestPlotPng(plot), "forest plot of the held-out nearest-task share");
  html += Note(
      "The routes of every task, held-out ones included, through each seed's router "
      "(tools/route_tasks, tools/analyze_routes): for each held-out task, does its nearest train "
      "task in route space (1 - mean total-variation distance) share one of its skills? Per-seed "
      "null: the train tasks' skill sets permuted. A trained router adds to its task vectors only "
      "where its share clears the untrained router's.");
  return html;
}

std::string TimingsSection(const PipelineRecord& record) {
  std::vector<std::vector<std::string>> rows;
  int64_t total = 0;
  for (const auto& [phase, seconds] : record.phase_seconds) {
    rows.push_back({phase, absl::StrFormat("%.1f", seconds / 60.0)});
    total += seconds;
  }
  rows.push_back({"all phases", absl::StrFormat("%.1f", total / 60.0)});
  return SectionHeading("timings", "Wall time per phase") + HtmlTable({"phase", "minutes"}, rows) +
         Note(absl::StrCat("From ", record.dir, "/timings.tsv (one line per run as well)."));
}

std::string NotesSection(const PipelineRecord& record) {
  std::string html = SectionHeading("inputs", "Inputs and notes");
  std::string files;
  for (const std::string& file : record.inputs.files) files += Element("li", file);
  html += Details(absl::StrCat(record.inputs.files.size(), " files read"),
                  absl::StrCat("<ul>\n", files, "</ul>\n"));
  if (!record.markdown_report.empty()) {
    html += Details("report.md (the pipeline's markdown tables, calibration included)",
                    absl::StrCat("<pre>", HtmlEscape(record.markdown_report), "</pre>\n"));
  }
  for (const std::string& note : record.inputs.notes) html += Note(note);
  return html;
}

}  // namespace

std::string PipelineReportHtml(const PipelineRecord& record, const PipelineReportOptions& options) {
  std::string body = Element(
      "p", absl::StrCat("Output directory ", record.dir,
                        " of the experiment pipeline (scripts/gym_pipeline.sh): every arm starts "
                        "from one pretrained model, trains the same number of steps and runs over "
                        "paired seeds (docs/experiments.md)."));
  std::vector<std::pair<std::string, std::string>> sections;
  for (const StatisticsFile& file : record.results) {
    sections.emplace_back(file.name, TitleOf(file.name));
  }
  if (!record.agreements.empty()) sections.emplace_back("agreement", "Route–skill agreement");
  if (!record.neighbours.empty()) sections.emplace_back("neighbours", "Held-out neighbours");
  if (!record.phase_seconds.empty()) sections.emplace_back("timings", "Wall time");
  sections.emplace_back("inputs", "Inputs and notes");
  body = Contents(sections) + body;
  for (const StatisticsFile& file : record.results) body += StatisticsSection(file);
  if (!record.agreements.empty()) body += AgreementSection(record, options);
  if (!record.neighbours.empty()) body += NeighboursSection(record, options);
  if (!record.phase_seconds.empty()) body += TimingsSection(record);
  body += NotesSection(record);
  return HtmlPage(absl::StrCat("TaskMoE pipeline report: ", record.dir), body);
}

}  // namespace taskmoe
