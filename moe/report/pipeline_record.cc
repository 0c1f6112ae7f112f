#include "moe/report/pipeline_record.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kStatsSuffix[] = "_stats.json";
constexpr char kRoutesPrefix[] = "routes_";
constexpr char kNeighboursPrefix[] = "neighbours_";
constexpr char kJsonSuffix[] = ".json";

// The result trees of scripts/gym_report.sh in the order of the pipeline; others follow by name.
int StatisticsRank(const std::string& name) {
  static const char* const kOrder[] = {"upstream", "finetune", "zero_shot", "finetune_dev"};
  const int known = static_cast<int>(std::size(kOrder));
  for (int i = 0; i < known; ++i) {
    if (name == kOrder[i]) return i;
  }
  return known;
}

// A number, or NaN for null or a missing key.
double NumberOr(const Json& object, const char* key) {
  if (!object.contains(key) || !object[key].is_number()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return object[key].get<double>();
}

// {"mean": x, "ci95": [low, high]}, any of them null.
IntervalEstimate IntervalOf(const Json& object, const char* key) {
  IntervalEstimate estimate;
  if (!object.contains(key) || !object[key].is_object()) return estimate;
  const Json& value = object[key];
  estimate.mean = NumberOr(value, "mean");
  if (value.contains("ci95") && value["ci95"].is_array() && value["ci95"].size() == 2) {
    const Json& ci = value["ci95"];
    if (ci[0].is_number()) estimate.low = ci[0].get<double>();
    if (ci[1].is_number()) estimate.high = ci[1].get<double>();
  }
  return estimate;
}

StatisticsFile ParseStatistics(const Json& json) {
  StatisticsFile file;
  file.bootstrap_draws = json.value("bootstrap_draws", int64_t{0});
  file.seed = json.value("seed", uint64_t{0});
  for (const Json& arm : json.value("arms", Json::array())) {
    file.arms.push_back({arm.value("name", ""), IntervalOf(arm, "test_points"),
                         arm.value("n_seeds", int64_t{0}), arm.value("n_tasks", int64_t{0}),
                         arm.value("n_samples", int64_t{0})});
  }
  for (const Json& c : json.value("comparisons", Json::array())) {
    ComparisonRow row;
    row.name = c.value("name", "");
    row.group = c.value("group", "");
    row.delta = IntervalOf(c, "delta");
    row.arg = IntervalOf(c, "arg");
    row.ratio_of_means = IntervalOf(c, "ratio_of_means");
    row.p_value = NumberOr(c, "p_value");
    row.p_value_holm = NumberOr(c, "p_value_holm");
    row.n_seeds = c.value("n_seeds", int64_t{0});
    row.n_tasks = c.value("n_tasks", int64_t{0});
    row.n_samples = c.value("n_samples", int64_t{0});
    row.zero_baseline_tasks = c.value("zero_baseline_tasks", std::vector<std::string>());
    file.comparisons.push_back(std::move(row));
  }
  return file;
}

ArmAgreement ParseAgreement(const Json& json) {
  ArmAgreement agreement;
  agreement.basis = json.value("basis", "");
  agreement.skills = json.value("skills", "");
  agreement.permutations = json.value("permutations", int64_t{0});
  for (const Json& f : json.value("files", Json::array())) {
    const Json held_out = f.value("held_out", Json::object());
    agreement.files.push_back({f.value("routes", ""), NumberOr(f, "spearman_rho"),
                               NumberOr(f, "p_value"), NumberOr(f, "partial_spearman_rho"),
                               NumberOr(f, "partial_p_value"),
                               NumberOr(held_out, "fraction_sharing_skill"),
                               NumberOr(held_out, "null_mean"), NumberOr(held_out, "p_value")});
  }
  const Json mean = json.value("mean", Json::object());
  agreement.mean_rho = IntervalOf(mean, "spearman_rho");
  agreement.mean_partial_rho = IntervalOf(mean, "partial_spearman_rho");
  agreement.mean_held_out_fraction = IntervalOf(mean, "held_out_fraction");
  return agreement;
}

// The parsed JSON of `path`, or nullopt with a note.
std::optional<Json> ReadJson(const std::string& path, ReportInputs& inputs) {
  const std::optional<std::string> text = inputs.ReadIfPresent(path, path);
  if (!text.has_value()) return std::nullopt;
  Json json = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    inputs.notes.push_back(absl::StrCat(path, ": left out, not a JSON object"));
    return std::nullopt;
  }
  return json;
}

// "phase: <name>\t<seconds>" lines of timings.tsv.
std::vector<std::pair<std::string, int64_t>> PhaseSeconds(const std::string& tsv) {
  std::vector<std::pair<std::string, int64_t>> phases;
  for (absl::string_view line : absl::StrSplit(tsv, '\n', absl::SkipEmpty())) {
    if (!absl::ConsumePrefix(&line, "phase: ")) continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    int64_t seconds = 0;
    if (fields.size() == 2 && absl::SimpleAtoi(fields[1], &seconds)) {
      phases.emplace_back(std::string(fields[0]), seconds);
    }
  }
  return phases;
}

// The names of the pipeline files in `dir`, without their prefix and suffix.
struct PipelineFileNames {
  std::vector<std::string> statistics;  // <name>_stats.json
  std::vector<std::string> agreements;  // routes_<arm>.json
  std::vector<std::string> neighbours;  // neighbours_<arm>.json

  bool empty() const { return statistics.empty() && agreements.empty() && neighbours.empty(); }
};

PipelineFileNames PipelineFiles(const std::string& dir) {
  PipelineFileNames names;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (!entry.is_regular_file()) continue;
    const std::string file_name = entry.path().filename().string();
    absl::string_view name = file_name;
    if (absl::ConsumeSuffix(&name, kStatsSuffix)) {
      names.statistics.emplace_back(name);
    } else if (!absl::ConsumeSuffix(&name, kJsonSuffix)) {
      continue;
    } else if (absl::ConsumePrefix(&name, kRoutesPrefix)) {
      names.agreements.emplace_back(name);
    } else if (absl::ConsumePrefix(&name, kNeighboursPrefix)) {
      names.neighbours.emplace_back(name);
    }
  }
  std::sort(names.statistics.begin(), names.statistics.end(),
            [](const std::string& a, const std::string& b) {
              return std::make_pair(StatisticsRank(a), a) < std::make_pair(StatisticsRank(b), b);
            });
  std::sort(names.agreements.begin(), names.agreements.end());
  std::sort(names.neighbours.begin(), names.neighbours.end());
  return names;
}

// The agreement files <prefix><arm>.json of `arms` in `dir`; one that does not parse is left out
// with a note.
std::vector<ArmAgreement> ReadAgreements(const std::string& dir, const char* prefix,
                                         const std::vector<std::string>& arms,
                                         ReportInputs& inputs) {
  std::vector<ArmAgreement> agreements;
  for (const std::string& arm : arms) {
    const std::string path = absl::StrCat(dir, "/", prefix, arm, kJsonSuffix);
    std::optional<Json> json = ReadJson(path, inputs);
    if (!json.has_value()) continue;
    ArmAgreement agreement;
    try {
      agreement = ParseAgreement(*json);
    } catch (const nlohmann::json::exception& e) {
      inputs.notes.push_back(absl::StrCat(path, ": left out, ", e.what()));
      continue;
    }
    agreement.arm = arm;
    agreement.path = path;
    agreements.push_back(std::move(agreement));
  }
  return agreements;
}

}  // namespace

bool IsPipelineOutput(const std::string& dir) { return !PipelineFiles(dir).empty(); }

absl::StatusOr<PipelineRecord> ReadPipelineRecord(const std::string& dir) {
  const PipelineFileNames names = PipelineFiles(dir);
  if (names.empty()) {
    return absl::NotFoundError(absl::StrCat(dir, " holds no *", kStatsSuffix, ", ", kRoutesPrefix,
                                            "*", kJsonSuffix, " or ", kNeighboursPrefix, "*",
                                            kJsonSuffix, ", so it is no pipeline output"));
  }
  PipelineRecord record;
  record.dir = dir;
  for (const std::string& name : names.statistics) {
    const std::string path = absl::StrCat(dir, "/", name, kStatsSuffix);
    std::optional<Json> json = ReadJson(path, record.inputs);
    if (!json.has_value()) continue;
    StatisticsFile file;
    try {
      file = ParseStatistics(*json);
    } catch (const nlohmann::json::exception& e) {
      record.inputs.notes.push_back(absl::StrCat(path, ": left out, ", e.what()));
      continue;
    }
    file.name = name;
    file.path = path;
    record.results.push_back(std::move(file));
  }
  record.agreements = ReadAgreements(dir, kRoutesPrefix, names.agreements, record.inputs);
  record.neighbours = ReadAgreements(dir, kNeighboursPrefix, names.neighbours, record.inputs);
  const std::optional<std::string> timings =
      record.inputs.ReadIfPresent(dir + "/timings.tsv", "phase timings");
  if (timings.has_value()) record.phase_seconds = PhaseSeconds(*timings);
  record.markdown_report =
      record.inputs.ReadIfPresent(dir + "/report.md", "markdown report").value_or("");
  return record;
}

}  // namespace taskmoe
