// Route-skill agreement over several routes files (the seeds of one arm): means with bootstrap
// intervals, as markdown and JSON.

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/route_agreement.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kBootstrapResamples = 10000;

// Linear interpolation between order statistics (NumPy's default percentile).
double Quantile(const std::vector<double>& sorted, double q) {
  const double position = q * (sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

std::optional<MeanInterval> MeanOver(const std::vector<RouteAgreementFile>& files,
                                     const std::function<double(const RouteAgreement&)>& value,
                                     uint64_t seed) {
  std::vector<double> values;
  for (const RouteAgreementFile& file : files) values.push_back(value(file.agreement));
  return BootstrapMean(values, kBootstrapResamples, seed);
}

std::string Number(double value) {
  return std::isfinite(value) ? absl::StrFormat("%.4f", value) : "undefined";
}

std::string Interval(const std::optional<MeanInterval>& m) {
  if (!m.has_value()) return "-";
  return absl::StrFormat("%.4f [%.4f, %.4f]", m->mean, m->low, m->high);
}

Json JsonNumber(double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); }

Json JsonInterval(const std::optional<MeanInterval>& m) {
  if (!m.has_value()) return nullptr;
  return {{"mean", m->mean}, {"ci95", {m->low, m->high}}, {"n", m->n}};
}

Json FileJson(const RouteAgreementFile& file) {
  const RouteAgreement& a = file.agreement;
  Json json = {{"routes", file.routes},
               {"route_tasks", file.route_tasks},
               {"n_tasks", a.n_tasks},
               {"n_pairs", a.n_pairs},
               {"spearman_rho", JsonNumber(a.spearman.statistic)},
               {"p_value", JsonNumber(a.spearman.p_value)},
               {"partial_spearman_rho", nullptr},
               {"partial_p_value", nullptr},
               {"held_out", nullptr}};
  if (a.partial.has_value()) {
    json["partial_spearman_rho"] = JsonNumber(a.partial->statistic);
    json["partial_p_value"] = JsonNumber(a.partial->p_value);
  }
  if (a.held_out.has_value()) {
    json["held_out"] = {{"n_held_out", a.held_out->held_out_tasks},
                        {"n_train", a.held_out->train_tasks},
                        {"fraction_sharing_skill", a.held_out->fraction},
                        {"null_mean", JsonNumber(a.held_out->null_mean)},
                        {"p_value", a.held_out->p_value}};
  }
  return json;
}

}  // namespace

std::optional<MeanInterval> BootstrapMean(const std::vector<double>& values, int resamples,
                                          uint64_t seed) {
  std::vector<double> finite;
  std::copy_if(values.begin(), values.end(), std::back_inserter(finite),
               [](double v) { return std::isfinite(v); });
  if (finite.empty()) return std::nullopt;
  MeanInterval result;
  result.n = static_cast<int>(finite.size());
  for (double v : finite) result.mean += v / finite.size();
  std::mt19937_64 rng(seed);
  std::vector<double> means(std::max(1, resamples));
  for (double& mean : means) {
    double sum = 0;
    for (size_t i = 0; i < finite.size(); ++i) sum += finite[rng() % finite.size()];
    mean = sum / finite.size();
  }
  std::sort(means.begin(), means.end());
  result.low = Quantile(means, 0.025);
  result.high = Quantile(means, 0.975);
  return result;
}

void SummarizeFiles(RouteAgreementReport* report) {
  const uint64_t seed = report->seed;
  report->spearman_rho =
      MeanOver(report->files, [](const RouteAgreement& a) { return a.spearman.statistic; }, seed);
  report->partial_spearman_rho = MeanOver(
      report->files,
      [](const RouteAgreement& a) { return a.partial.has_value() ? a.partial->statistic : NAN; },
      seed);
  report->held_out_fraction = MeanOver(
      report->files,
      [](const RouteAgreement& a) { return a.held_out.has_value() ? a.held_out->fraction : NAN; },
      seed);
}

std::string RouteAgreementMarkdown(const RouteAgreementReport& report) {
  std::string text = absl::StrCat("Route-", report.basis == "skills" ? "skill" : "category",
                                  " agreement (", report.skills_source, "; ",
                                  report.permutations, " permutations, seed ", report.seed,
                                  ")\n\n");
  absl::StrAppend(&text,
                  "| routes | tasks | pairs | Spearman rho | p | partial rho | p | held-out "
                  "nearest shares a skill | null | p |\n",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const RouteAgreementFile& file : report.files) {
    const RouteAgreement& a = file.agreement;
    absl::StrAppend(&text, "| ", file.routes, " | ", a.n_tasks, " | ", a.n_pairs, " | ",
                    Number(a.spearman.statistic), " | ", Number(a.spearman.p_value), " | ");
    if (a.partial.has_value()) {
      absl::StrAppend(&text, Number(a.partial->statistic), " | ", Number(a.partial->p_value),
                      " | ");
    } else {
      absl::StrAppend(&text, "- | - | ");
    }
    if (a.held_out.has_value()) {
      const HeldOutNeighbours& h = *a.held_out;
      absl::StrAppend(&text, Number(h.fraction), " of ", h.held_out_tasks, " | ",
                      Number(h.null_mean), " | ", Number(h.p_value), " |\n");
    } else {
      absl::StrAppend(&text, "- | - | - |\n");
    }
  }
  absl::StrAppend(&text, "| mean [95% bootstrap CI] over ", report.files.size(),
                  " files | | | ", Interval(report.spearman_rho), " | | ",
                  Interval(report.partial_spearman_rho), " | | ",
                  Interval(report.held_out_fraction), " | | |\n");
  return text;
}

std::string RouteAgreementJson(const RouteAgreementReport& report) {
  Json files = Json::array();
  for (const RouteAgreementFile& file : report.files) files.push_back(FileJson(file));
  const Json json = {{"basis", report.basis},
                     {"skills", report.skills_source},
                     {"permutations", report.permutations},
                     {"seed", report.seed},
                     {"files", files},
                     {"mean",
                      {{"n_files", report.files.size()},
                       {"spearman_rho", JsonInterval(report.spearman_rho)},
                       {"partial_spearman_rho", JsonInterval(report.partial_spearman_rho)},
                       {"held_out_fraction", JsonInterval(report.held_out_fraction)}}}};
  return json.dump(2) + "\n";
}

}  // namespace taskmoe
