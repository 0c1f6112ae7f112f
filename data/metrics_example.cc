// The per-example metrics: EM, ACC and QA-F1 on SQuAD-normalised text, and Rouge-L.

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/metrics.h"
#include "data/metrics_internal.h"
#include "data/python_str.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace metrics_internal {
namespace {

namespace ps = ::taskmoe::python_str;

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

}  // namespace

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
        return absl::InvalidArgumentError(
            absl::StrCat(std::string(MetricName(metric)),
                         " is computed over the whole list; it has no per-example scores"));
    }
  }
  return scores;
}

}  // namespace metrics_internal
}  // namespace taskmoe
