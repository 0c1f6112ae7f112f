#include "data/metrics.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "data/python_str.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

struct MetricCase {
  std::string id;
  std::string metric;
  std::vector<std::string> predictions;
  std::vector<std::vector<std::string>> references;
  bool expect_error = false;
  bool expect_nan = false;
  double expected = 0.0;
};

std::vector<MetricCase> LoadCases() {
  std::ifstream file(testing::SharedPath("fixtures/metrics/cases.jsonl"));
  EXPECT_TRUE(file.good());
  std::vector<MetricCase> cases;
  std::string line;
  while (std::getline(file, line)) {
    const nlohmann::json json = nlohmann::json::parse(line);
    MetricCase c;
    c.id = json.at("id").get<std::string>();
    c.metric = json.at("metric").get<std::string>();
    c.predictions = json.at("predictions").get<std::vector<std::string>>();
    c.references = json.at("references").get<std::vector<std::vector<std::string>>>();
    c.expect_error = json.contains("error");
    c.expect_nan = !c.expect_error && json.at("expected").is_null();
    if (!json.at("expected").is_null()) c.expected = json.at("expected").get<double>();
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(MetricsTest, AllFixtureCasesMatchTheOriginal) {
  const std::vector<MetricCase> cases = LoadCases();
  ASSERT_EQ(cases.size(), 73u);
  std::map<std::string, int> per_metric;
  for (const MetricCase& c : cases) {
    SCOPED_TRACE(c.id);
    ++per_metric[c.metric];
    const absl::StatusOr<double> score = Evaluate(c.predictions, c.references, c.metric);
    if (c.expect_error) {
      EXPECT_FALSE(score.ok()) << "got " << *score;
    } else if (c.expect_nan) {
      ASSERT_TRUE(score.ok()) << score.status();
      EXPECT_TRUE(std::isnan(*score)) << *score;
    } else {
      ASSERT_TRUE(score.ok()) << score.status();
      EXPECT_NEAR(*score, c.expected, 1e-12);
    }
  }
  EXPECT_EQ(per_metric.size(), AllMetrics().size());
}

TEST(MetricsTest, ErrorsSayWhatTheOriginalRaised) {
  const absl::StatusOr<double> empty_reference =
      Evaluate({"a b", "c"}, {{"a b"}, {"..."}}, Metric::kRougeL);
  ASSERT_FALSE(empty_reference.ok());
  EXPECT_NE(empty_reference.status().message().find("Reference is empty."), std::string::npos);
  EXPECT_NE(empty_reference.status().message().find("example 1"), std::string::npos);

  const absl::StatusOr<double> single = Evaluate({"1"}, {{"2"}}, Metric::kPearsonCorrelation);
  ASSERT_FALSE(single.ok());
  EXPECT_NE(single.status().message().find("at least 2"), std::string::npos);

  const absl::StatusOr<double> nan_prediction =
      Evaluate({"1", "nan", "2"}, {{"1"}, {"2"}, {"3"}}, Metric::kPearsonCorrelation);
  ASSERT_FALSE(nan_prediction.ok());
  EXPECT_NE(nan_prediction.status().message().find("infs or NaNs"), std::string::npos);

  EXPECT_FALSE(Evaluate({"x"}, {{}}, Metric::kClassificationF1).ok());
  EXPECT_FALSE(Evaluate({"x"}, {{"a"}, {"b"}}, Metric::kExactMatch).ok());
  EXPECT_FALSE(Evaluate({"\xff"}, {{"a"}}, Metric::kExactMatch).ok());
  const absl::StatusOr<double> unknown = Evaluate({"x"}, {{"x"}}, "BLEU");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("Rouge-L"), std::string::npos);
}

TEST(MetricsTest, EmptyListGivesNaNForMeanMetrics) {
  for (Metric metric : {Metric::kExactMatch, Metric::kAccuracy, Metric::kQaF1, Metric::kRougeL}) {
    const absl::StatusOr<double> score = Evaluate({}, {}, metric);
    ASSERT_TRUE(score.ok());
    EXPECT_TRUE(std::isnan(*score)) << MetricName(metric);
  }
}

TEST(MetricsTest, PerExampleScoresAverageToTheMetric) {
  for (const MetricCase& c : LoadCases()) {
    SCOPED_TRACE(c.id);
    const Metric metric = *ParseMetric(c.metric);
    const absl::StatusOr<std::vector<double>> scores =
        EvaluatePerExample(c.predictions, c.references, metric);
    if (!IsMeanOfExampleScores(metric)) {
      EXPECT_FALSE(scores.ok());
      continue;
    }
    if (c.expect_error) {
      EXPECT_FALSE(scores.ok());
      continue;
    }
    ASSERT_TRUE(scores.ok()) << scores.status();
    ASSERT_EQ(scores->size(), c.predictions.size());
    double sum = 0;
    for (double s : *scores) {
      EXPECT_GE(s, 0.0);
      EXPECT_LE(s, 1.0);
      sum += s;
    }
    EXPECT_NEAR(sum / scores->size(), c.expected, 1e-12);
  }
}

TEST(MetricsTest, RougeLIdenticalTextsGiveThePackagesSmoothedOne) {
  // 2 * (1 * 1) / (1 + 1 + 1e-8), whatever the text.
  const double expected = 2.0 / (2.0 + 1e-8);
  EXPECT_NEAR(*Evaluate({"x y z. w"}, {{"x y z. w"}}, Metric::kRougeL), expected, 1e-15);
  EXPECT_NEAR(*Evaluate({"one"}, {{"one"}}, Metric::kRougeL), expected, 1e-15);
}

TEST(MetricTableTest, CrossFitTableIsTheReposCopyOfTheOriginal) {
  const MetricTable& table = MetricTable::CrossFit();
  EXPECT_EQ(table.entries().size(), 160u);
  std::map<Metric, int> counts;
  for (const auto& entry : table.entries()) ++counts[entry.second];
  EXPECT_EQ(counts[Metric::kAccuracy], 51);
  EXPECT_EQ(counts[Metric::kClassificationF1], 51);
  EXPECT_EQ(counts[Metric::kExactMatch], 28);
  EXPECT_EQ(counts[Metric::kRougeL], 17);
  EXPECT_EQ(counts[Metric::kQaF1], 9);
  EXPECT_EQ(counts[Metric::kPearsonCorrelation], 3);
  EXPECT_EQ(counts[Metric::kMatthewCorrelation], 1);
  EXPECT_EQ(*table.MetricOf("glue-cola"), Metric::kMatthewCorrelation);
  EXPECT_EQ(*table.MetricOf("mocha"), Metric::kPearsonCorrelation);

  // The compiled-in copy equals the shared original, entry for entry and in order.
  const absl::StatusOr<MetricTable> shared =
      MetricTable::Load(testing::SharedPath("crossfit/metrics.json"));
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->entries(), table.entries());

  const absl::StatusOr<Metric> missing = table.MetricOf("no-such-task");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no-such-task"), std::string::npos);
}

TEST(MetricFilesTest, ReadsPredictionAndReferenceFiles) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::string dir = root != nullptr ? root : "/tmp";
  std::ofstream(dir + "/pred.txt", std::ios::binary) << "  a b \r\n\nc\n";
  EXPECT_EQ(*ReadPredictionsFile(dir + "/pred.txt", /*strip=*/true),
            (std::vector<std::string>{"a b", "", "c"}));
  EXPECT_EQ(*ReadPredictionsFile(dir + "/pred.txt", /*strip=*/false),
            (std::vector<std::string>{"  a b ", "", "c"}));
  std::ofstream(dir + "/gold.txt", std::ios::binary) << "x\ty\r\n\nz\n";
  EXPECT_EQ(*ReadReferencesFile(dir + "/gold.txt"),
            (std::vector<std::vector<std::string>>{{"x", "y"}, {""}, {"z"}}));
  std::ofstream(dir + "/bad.txt", std::ios::binary) << "ok\n\xff\n";
  const absl::StatusOr<std::vector<std::string>> bad = ReadPredictionsFile(dir + "/bad.txt", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.txt:2: invalid UTF-8"), std::string::npos);
  EXPECT_FALSE(ReadReferencesFile(dir + "/missing.txt").ok());
}

TEST(MetricTableTest, RejectsMalformedTables) {
  EXPECT_FALSE(MetricTable::Parse("[1, 2]", "t.json").ok());
  EXPECT_FALSE(MetricTable::Parse("{\"a\": 3}", "t.json").ok());
  const absl::StatusOr<MetricTable> bad = MetricTable::Parse("{\"task\": \"BLEU\"}", "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("t.json"), std::string::npos);
  EXPECT_FALSE(MetricTable::Load("/nonexistent/metrics.json").ok());
}

TEST(PythonStrTest, FloatParsingFollowsPython) {
  using python_str::ParseFloat;
  EXPECT_EQ(ParseFloat(" 4 "), 4.0);
  EXPECT_EQ(ParseFloat("1_0"), 10.0);
  EXPECT_EQ(ParseFloat("1e1_0"), 1e10);
  EXPECT_EQ(ParseFloat("\xef\xbc\x92"), 2.0);         // fullwidth 2
  EXPECT_EQ(ParseFloat("\xd9\xa3.5"), 3.5);           // Arabic-Indic 3
  EXPECT_EQ(ParseFloat("\xc2\xa0-.5\xe3\x80\x80"), -0.5);  // NBSP, ideographic space
  EXPECT_EQ(ParseFloat("3."), 3.0);
  EXPECT_EQ(ParseFloat("-Infinity"), -HUGE_VAL);
  EXPECT_EQ(ParseFloat("1e400"), HUGE_VAL);
  EXPECT_TRUE(std::isnan(*ParseFloat("nAn")));
  for (const char* bad : {"", " ", "0x10", "1,5", "3 stars", "1__0", "_1", "1_", "1_.5", "1._5",
                          ".", "e5", "1e", "+", "in f", "infinit"}) {
    EXPECT_FALSE(ParseFloat(bad).has_value()) << bad;
  }
}

TEST(PythonStrTest, LowerIsPythonsFullLowercasing) {
  EXPECT_EQ(python_str::LowerUtf8("\xce\x9f\xce\x94\xce\x9f\xce\xa3"),  // ΟΔΟΣ
            "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");                        // οδος, final sigma
  EXPECT_EQ(python_str::LowerUtf8("\xce\xa3"), "\xcf\x83");             // lone Σ -> σ
  EXPECT_EQ(python_str::LowerUtf8("\xce\xa3\xce\x91"), "\xcf\x83\xce\xb1");  // ΣΑ -> σα
  EXPECT_EQ(python_str::LowerUtf8("\xc4\xb0"), "i\xcc\x87");            // İ -> i + U+0307
  EXPECT_EQ(python_str::LowerUtf8("STRASSE \xc3\x89"), "strasse \xc3\xa9");
}

TEST(PythonStrTest, WhitespaceIsPythons) {
  const std::u32string text = U"\u00a0a\u3000b\u0085c\u001fd\u200be ";
  const std::vector<std::u32string> words = python_str::SplitWhitespace(text);
  // U+200B (zero width space) is not whitespace in Python.
  EXPECT_EQ(words, (std::vector<std::u32string>{U"a", U"b", U"c", U"d\u200be"}));
  EXPECT_EQ(python_str::Strip(U" \t x y\u2028"), U"x y");
  EXPECT_FALSE(python_str::IsValidUtf8("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(python_str::IsValidUtf8("\xc0\xaf"));      // overlong '/'
}

}  // namespace
}  // namespace taskmoe
