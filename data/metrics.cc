#include "data/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/python_str.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

namespace ps = ::taskmoe::python_str;
using Text = std::u32string;

constexpr char kCrossFitMetricsJson[] =
#include "data/crossfit_metrics_json.inc"
    ;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Inputs decoded once: predictions and references as code points.
struct DecodedInputs {
  std::vector<Text> predictions;
  std::vector<std::vector<Text>> references;
};

absl::StatusOr<DecodedInputs> Decode(const std::vector<std::string>& predictions,
                                     const std::vector<std::vector<std::string>>& references,
                                     Metric metric) {
  if (predictions.size() != references.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(MetricName(metric)), ": ", predictions.size(), " predictions for ", references.size(),
        " examples (the original asserts len(predictions) == len(data))"));
  }
  DecodedInputs out;
  out.predictions.reserve(predictions.size());
  out.references.resize(references.size());
  for (size_t i = 0; i < predictions.size(); ++i) {
    absl::StatusOr<Text> prediction = ps::DecodeUtf8(predictions[i]);
    if (!prediction.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("prediction ", i, ": ", prediction.status().message()));
    }
    out.predictions.push_back(*std::move(prediction));
    for (size_t r = 0; r < references[i].size(); ++r) {
      absl::StatusOr<Text> reference = ps::DecodeUtf8(references[i][r]);
      if (!reference.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("reference ", r, " of example ", i, ": ",
                                                       reference.status().message()));
      }
      out.references[i].push_back(*std::move(reference));
    }
  }
  return out;
}

Text RemoveAsciiPunctuation(const Text& text) {
  Text out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (!ps::IsAsciiPunctuation(c)) out.push_back(c);
  }
  return out;
}

// re.sub(r"\b(a|an|the)\b", " ", s): a match is exactly a maximal run of word characters that
// spells an article, so replacing such runs is the same as the regex.
Text ReplaceArticles(const Text& text) {
  static const Text kArticles[] = {U"a", U"an", U"the"};
  Text out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (!ps::IsWordChar(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    const size_t start = i;
    while (i < text.size() && ps::IsWordChar(text[i])) ++i;
    const std::u32string_view word(text.data() + start, i - start);
    const bool is_article =
        std::any_of(std::begin(kArticles), std::end(kArticles),
                    [&](const Text& article) { return word == article; });
    if (is_article) {
      out.push_back(U' ');
    } else {
      out.append(word);
    }
  }
  return out;
}

// SQuAD's normalize_answer: lower, drop ASCII punctuation, articles -> " ", collapse whitespace.
// Returned as its whitespace-separated tokens (joining them with " " gives the string).
std::vector<Text> NormalizedTokens(const Text& text) {
  return ps::SplitWhitespace(ReplaceArticles(RemoveAsciiPunctuation(ps::Lower(text))));
}

double QaF1(const std::vector<Text>& prediction_tokens, const std::vector<Text>& gold_tokens) {
  std::map<Text, int> gold_counts;
  for (const Text& token : gold_tokens) ++gold_counts[token];
  int common = 0;
  for (const Text& token : prediction_tokens) {
    auto it = gold_counts.find(token);
    if (it != gold_counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return 0.0;
  const double precision = 1.0 * common / prediction_tokens.size();
  const double recall = 1.0 * common / gold_tokens.size();
  return (2 * precision * recall) / (precision + recall);
}

// --- Rouge-L (the `rouge` package 1.0.1, summary-level LCS, exclusive mode) -----------------

using Tokens = std::vector<Text>;

// [" ".join(s.split()) for s in text.split(".") if len(s) > 0], each split on " ".
std::vector<Tokens> RougeSentences(const Text& text) {
  std::vector<Tokens> sentences;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(U'.', start);
    if (end == Text::npos) end = text.size();
    if (end > start) {
      // The words of the whitespace-normalised segment are its tokens; a blank segment is the
      // empty sentence, whose only token is "".
      Tokens tokens = ps::SplitWhitespace(std::u32string_view(text).substr(start, end - start));
      if (tokens.empty()) tokens.emplace_back();
      sentences.push_back(std::move(tokens));
    }
    start = end + 1;
  }
  return sentences;
}

size_t DistinctTokenCount(const std::vector<Tokens>& sentences) {
  std::set<Text> distinct;
  for (const Tokens& sentence : sentences) distinct.insert(sentence.begin(), sentence.end());
  return distinct.size();
}

// Adds to `lcs_tokens` the tokens of the one LCS of (reference, prediction) that the package's
// walk-back reconstructs: equal -> diagonal; else up only if strictly better, otherwise left.
void AddReconstructedLcs(const Tokens& reference, const Tokens& prediction,
                         std::set<Text>* lcs_tokens) {
  const size_t rows = reference.size();
  const size_t cols = prediction.size();
  std::vector<int> table((rows + 1) * (cols + 1), 0);
  auto at = [&](size_t i, size_t j) -> int& { return table[i * (cols + 1) + j]; };
  for (size_t i = 1; i <= rows; ++i) {
    for (size_t j = 1; j <= cols; ++j) {
      at(i, j) = reference[i - 1] == prediction[j - 1] ? at(i - 1, j - 1) + 1
                                                       : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  size_t i = rows;
  size_t j = cols;
  while (i > 0 && j > 0) {
    if (reference[i - 1] == prediction[j - 1]) {
      lcs_tokens->insert(reference[i - 1]);
      --i;
      --j;
    } else if (at(i - 1, j) > at(i, j - 1)) {
      --i;
    } else {
      --j;
    }
  }
}

absl::StatusOr<double> RougeLF(const Text& prediction, const Text& reference) {
  const std::vector<Tokens> reference_sentences = RougeSentences(reference);
  if (reference_sentences.empty()) {
    return absl::InvalidArgumentError("Reference is empty.");
  }
  const std::vector<Tokens> prediction_sentences = RougeSentences(prediction);
  if (prediction_sentences.empty()) {
    return absl::InvalidArgumentError("Hypothesis is empty.");
  }
  const double m = static_cast<double>(DistinctTokenCount(reference_sentences));
  const double n = static_cast<double>(DistinctTokenCount(prediction_sentences));
  std::set<Text> lcs_union;
  for (const Tokens& reference_sentence : reference_sentences) {
    for (const Tokens& prediction_sentence : prediction_sentences) {
      AddReconstructedLcs(reference_sentence, prediction_sentence, &lcs_union);
    }
  }
  const double llcs = static_cast<double>(lcs_union.size());
  const double recall = llcs / m;
  const double precision = llcs / n;
  return 2.0 * ((precision * recall) / (precision + recall + 1e-8));
}

absl::StatusOr<double> RougeLOverReferences(const Text& prediction,
                                            const std::vector<Text>& references,
                                            size_t example) {
  // The original returns 0 before calling the package when nothing but punctuation is left.
  if (RemoveAsciiPunctuation(prediction).empty()) return 0.0;
  if (references.empty()) return 0.0;
  double best = -std::numeric_limits<double>::infinity();
  for (size_t r = 0; r < references.size(); ++r) {
    absl::StatusOr<double> score = RougeLF(prediction, references[r]);
    if (!score.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Rouge-L: reference ", r, " of example ", example, " (\"",
                       ps::EncodeUtf8(references[r]), "\"): ", score.status().message()));
    }
    best = std::max(best, *score);
  }
  return best;
}

absl::StatusOr<std::vector<double>> ExampleScores(const DecodedInputs& inputs, Metric metric) {
  const size_t count = inputs.predictions.size();
  std::vector<double> scores(count, 0.0);
  for (size_t i = 0; i < count; ++i) {
    const Text& prediction = inputs.predictions[i];
    const std::vector<Text>& references = inputs.references[i];
    double& score = scores[i];
    switch (metric) {
      case Metric::kExactMatch: {
        const std::vector<Text> predicted = NormalizedTokens(prediction);
        for (const Text& reference : references) {
          if (NormalizedTokens(reference) == predicted) score = 1.0;
        }
        break;
      }
      case Metric::kAccuracy: {
        const Text predicted = ps::Lower(prediction);
        for (const Text& reference : references) {
          if (ps::Lower(reference) == predicted) score = 1.0;
        }
        break;
      }
      case Metric::kQaF1: {
        const std::vector<Text> predicted = NormalizedTokens(prediction);
        for (size_t r = 0; r < references.size(); ++r) {
          const double f1 = QaF1(predicted, NormalizedTokens(references[r]));
          score = r == 0 ? f1 : std::max(score, f1);
        }
        break;
      }
      case Metric::kRougeL: {
        TASKMOE_ASSIGN_OR_RETURN(score, RougeLOverReferences(prediction, references, i));
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            std::string(MetricName(metric)), " is computed over the whole list; it has no per-example scores"));
    }
  }
  return scores;
}

double Mean(const std::vector<double>& values) {
  if (values.empty()) return kNaN;  // np.mean([])
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

// references[i][0] of every example; the original indexes it and raises IndexError.
absl::StatusOr<std::vector<Text>> FirstReferences(const DecodedInputs& inputs, Metric metric) {
  std::vector<Text> gold;
  gold.reserve(inputs.references.size());
  for (size_t i = 0; i < inputs.references.size(); ++i) {
    if (inputs.references[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(MetricName(metric)), ": example ", i,
                       " has no reference (the original raises IndexError)"));
    }
    gold.push_back(inputs.references[i][0]);
  }
  return gold;
}

// sklearn.metrics.f1_score(gold, predictions, average="macro").
absl::StatusOr<double> MacroF1(const DecodedInputs& inputs) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Text> gold,
                           FirstReferences(inputs, Metric::kClassificationF1));
  if (gold.empty()) {
    return absl::InvalidArgumentError("Classification-F1: no examples");
  }
  struct Counts {
    double true_positive = 0, predicted = 0, actual = 0;
  };
  std::map<Text, Counts> classes;
  for (size_t i = 0; i < gold.size(); ++i) {
    const Text& label = gold[i];
    const Text& predicted = inputs.predictions[i];
    classes[label].actual += 1;
    classes[predicted].predicted += 1;
    if (label == predicted) classes[label].true_positive += 1;
  }
  double sum = 0.0;
  for (const auto& [label, counts] : classes) {
    const double precision =
        counts.predicted > 0 ? counts.true_positive / counts.predicted : 0.0;
    const double recall = counts.actual > 0 ? counts.true_positive / counts.actual : 0.0;
    if (precision + recall > 0) sum += 2 * precision * recall / (precision + recall);
  }
  return sum / static_cast<double>(classes.size());
}

// sklearn.metrics.matthews_corrcoef on "acceptable" -> 1, anything else -> 0.
absl::StatusOr<double> MatthewsCorrelation(const DecodedInputs& inputs) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Text> gold,
                           FirstReferences(inputs, Metric::kMatthewCorrelation));
  if (gold.empty()) {
    return absl::InvalidArgumentError("Matthew-Correlation: no examples");
  }
  static const Text kPositive = U"acceptable";
  double t[2] = {0, 0}, p[2] = {0, 0};
  double correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    const int truth = gold[i] == kPositive ? 1 : 0;
    const int predicted = Text(ps::Strip(inputs.predictions[i])) == kPositive ? 1 : 0;
    t[truth] += 1;
    p[predicted] += 1;
    if (truth == predicted) correct += 1;
  }
  const double n = static_cast<double>(gold.size());
  const double cov_tp = correct * n - (t[0] * p[0] + t[1] * p[1]);
  const double cov_pp = n * n - (p[0] * p[0] + p[1] * p[1]);
  const double cov_tt = n * n - (t[0] * t[0] + t[1] * t[1]);
  if (cov_tt * cov_pp == 0) return 0.0;
  return cov_tp / std::sqrt(cov_tt * cov_pp);
}

double Sign(double x) {
  if (std::isnan(x)) return x;
  return static_cast<double>((x > 0) - (x < 0));
}

// A scaled Euclidean norm (like BLAS nrm2, which scipy.linalg.norm uses), immune to overflow.
double Norm(const std::vector<double>& v) {
  double scale = 0.0;
  for (double x : v) scale = std::max(scale, std::fabs(x));
  if (scale == 0.0) return 0.0;
  double sum = 0.0;
  for (double x : v) sum += (x / scale) * (x / scale);
  return scale * std::sqrt(sum);
}

// scipy.stats.pearsonr(gold, predictions)[0] (scipy 1.10.1), unparsable predictions -> 3.0.
absl::StatusOr<double> PearsonCorrelation(const DecodedInputs& inputs) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Text> gold_text,
                           FirstReferences(inputs, Metric::kPearsonCorrelation));
  const size_t n = gold_text.size();
  std::vector<double> x(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string gold_utf8 = ps::EncodeUtf8(gold_text[i]);
    std::optional<double> gold = ps::ParseFloat(gold_utf8);
    if (!gold.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Pearson-Correlation: reference of example ", i, " (\"", gold_utf8,
                       "\") is not a number (the original raises ValueError)"));
    }
    x[i] = *gold;
    y[i] = ps::ParseFloat(ps::EncodeUtf8(ps::Strip(inputs.predictions[i]))).value_or(3.0);
  }
  if (n < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pearson-Correlation: x and y must have length at least 2. (got ", n, ")"));
  }
  auto constant = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [&](double e) { return e == v[0]; });
  };
  if (constant(x) || constant(y)) return kNaN;
  if (n == 2) return Sign(x[1] - x[0]) * Sign(y[1] - y[0]);
  const double x_mean = Mean(x);
  const double y_mean = Mean(y);
  std::vector<double> xm(n), ym(n);
  for (size_t i = 0; i < n; ++i) {
    xm[i] = x[i] - x_mean;
    ym[i] = y[i] - y_mean;
    if (!std::isfinite(xm[i]) || !std::isfinite(ym[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Pearson-Correlation: array must not contain infs or NaNs (example ", i, ")"));
    }
  }
  const double x_norm = Norm(xm);
  const double y_norm = Norm(ym);
  double r = 0.0;
  for (size_t i = 0; i < n; ++i) r += (xm[i] / x_norm) * (ym[i] / y_norm);
  return std::max(std::min(r, 1.0), -1.0);
}

}  // namespace

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kExactMatch: return "EM";
    case Metric::kAccuracy: return "ACC";
    case Metric::kQaF1: return "QA-F1";
    case Metric::kClassificationF1: return "Classification-F1";
    case Metric::kMatthewCorrelation: return "Matthew-Correlation";
    case Metric::kPearsonCorrelation: return "Pearson-Correlation";
    case Metric::kRougeL: return "Rouge-L";
  }
  return "";
}

const std::vector<Metric>& AllMetrics() {
  static const std::vector<Metric> kAll = {
      Metric::kExactMatch,          Metric::kAccuracy,           Metric::kQaF1,
      Metric::kClassificationF1,    Metric::kMatthewCorrelation, Metric::kPearsonCorrelation,
      Metric::kRougeL};
  return kAll;
}

absl::StatusOr<Metric> ParseMetric(std::string_view name) {
  std::vector<std::string> known;
  for (Metric metric : AllMetrics()) {
    if (MetricName(metric) == name) return metric;
    known.emplace_back(MetricName(metric));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown metric \"", std::string(name),
                                                 "\"; known: ", absl::StrJoin(known, ", ")));
}

bool IsMeanOfExampleScores(Metric metric) {
  return metric == Metric::kExactMatch || metric == Metric::kAccuracy ||
         metric == Metric::kQaF1 || metric == Metric::kRougeL;
}

absl::StatusOr<double> Evaluate(const std::vector<std::string>& predictions,
                                const std::vector<std::vector<std::string>>& references,
                                std::string_view metric) {
  TASKMOE_ASSIGN_OR_RETURN(const Metric parsed, ParseMetric(metric));
  return Evaluate(predictions, references, parsed);
}

absl::StatusOr<double> Evaluate(const std::vector<std::string>& predictions,
                                const std::vector<std::vector<std::string>>& references,
                                Metric metric) {
  TASKMOE_ASSIGN_OR_RETURN(const DecodedInputs inputs, Decode(predictions, references, metric));
  switch (metric) {
    case Metric::kClassificationF1: return MacroF1(inputs);
    case Metric::kMatthewCorrelation: return MatthewsCorrelation(inputs);
    case Metric::kPearsonCorrelation: return PearsonCorrelation(inputs);
    default: {
      TASKMOE_ASSIGN_OR_RETURN(const std::vector<double> scores, ExampleScores(inputs, metric));
      return Mean(scores);
    }
  }
}

absl::StatusOr<std::vector<double>> EvaluatePerExample(
    const std::vector<std::string>& predictions,
    const std::vector<std::vector<std::string>>& references, Metric metric) {
  TASKMOE_ASSIGN_OR_RETURN(const DecodedInputs inputs, Decode(predictions, references, metric));
  return ExampleScores(inputs, metric);
}

namespace {

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat("cannot open ", std::string(what), " ",
                                                            path, ": ", bytes.status().message()));
  }
  std::vector<std::string> lines = absl::StrSplit(*bytes, '\n');
  if (lines.back().empty()) lines.pop_back();  // The final newline, or an empty file.
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string& line = lines[i];
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!ps::IsValidUtf8(line)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", i + 1, ": invalid UTF-8"));
    }
  }
  return lines;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadPredictionsFile(const std::string& path, bool strip) {
  TASKMOE_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path, "predictions file"));
  if (strip) {
    for (std::string& line : lines) line = ps::StripUtf8(line);
  }
  return lines;
}

absl::StatusOr<std::vector<std::vector<std::string>>> ReadReferencesFile(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> lines,
                           ReadLines(path, "references file"));
  std::vector<std::vector<std::string>> references;
  references.reserve(lines.size());
  for (const std::string& line : lines) references.push_back(absl::StrSplit(line, '\t'));
  return references;
}

const MetricTable& MetricTable::CrossFit() {
  static const MetricTable* const kTable = [] {
    absl::StatusOr<MetricTable> table =
        Parse(kCrossFitMetricsJson, "data/crossfit_metrics.json (compiled in)");
    CHECK(table.ok()) << table.status();
    return new MetricTable(*std::move(table));
  }();
  return *kTable;
}

absl::StatusOr<MetricTable> MetricTable::Load(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string content, ReadFileBytes(path));
  return Parse(content, path);
}

absl::StatusOr<MetricTable> MetricTable::Parse(std::string_view json_text,
                                               std::string_view source) {
  const nlohmann::ordered_json json =
      nlohmann::ordered_json::parse(json_text.begin(), json_text.end(), nullptr,
                                    /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source),
                     ": expected a JSON object mapping task names to metric names"));
  }
  MetricTable table;
  table.source_ = std::string(source);
  for (const auto& [task, value] : json.items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(source), ": the value of task \"", task, "\" is not a string"));
    }
    absl::StatusOr<Metric> metric = ParseMetric(value.get<std::string>());
    if (!metric.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(source), ": task \"", task, "\": ", metric.status().message()));
    }
    table.entries_.emplace_back(task, *metric);
  }
  return table;
}

absl::StatusOr<Metric> MetricTable::MetricOf(std::string_view task) const {
  for (const auto& [name, metric] : entries_) {
    if (name == task) return metric;
  }
  return absl::NotFoundError(
      absl::StrCat("task \"", std::string(task), "\" is not in the metric table ", source_));
}

}  // namespace taskmoe
