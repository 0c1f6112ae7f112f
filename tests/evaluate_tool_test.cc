// Runs tools/evaluate on metric fixture cases (the original's values) written out as a
// predictions file plus a references file or a CrossFit TSV.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "data/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_runner.h"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::ToolResult;

struct FixtureCase {
  std::string metric;
  std::vector<std::string> predictions;
  std::vector<std::vector<std::string>> references;
  double expected = 0.0;
};

std::map<std::string, FixtureCase> LoadCases() {
  std::ifstream file(testing::SharedPath("fixtures/metrics/cases.jsonl"));
  std::map<std::string, FixtureCase> cases;
  for (std::string line; std::getline(file, line);) {
    const nlohmann::json json = nlohmann::json::parse(line);
    FixtureCase c;
    c.metric = json.at("metric").get<std::string>();
    c.predictions = json.at("predictions").get<std::vector<std::string>>();
    c.references = json.at("references").get<std::vector<std::vector<std::string>>>();
    if (json.at("expected").is_number()) c.expected = json.at("expected").get<double>();
    cases[json.at("id").get<std::string>()] = c;
  }
  return cases;
}

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  return root != nullptr ? root : "/tmp";
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream file(path, std::ios::binary);
  for (const std::string& line : lines) file << line << "\n";
}

std::string JoinTabs(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i > 0 ? "\t" : "") + fields[i];
  return out;
}

ToolResult RunEvaluate(const std::string& arguments) {
  return testing::RunToolBinary("evaluate", arguments);
}

// The score on the tool's last line, "<metric> <score>".
double LastScore(const std::string& output, const std::string& metric) {
  std::istringstream lines(output);
  std::string line, last;
  while (std::getline(lines, line)) last = line;
  EXPECT_EQ(last.rfind(metric + " ", 0), 0u) << output;
  return std::stod(last.substr(metric.size() + 1));
}

class EvaluateToolTest : public ::testing::Test {
 protected:
  std::map<std::string, FixtureCase> cases_ = LoadCases();
};

TEST_F(EvaluateToolTest, ReproducesFixtureCasesFromAReferencesFile) {
  for (const std::string id : {"em_multiple_references", "acc_multiple_references",
                               "qaf1_multiple_references", "cf1_binary_mixed", "mcc_mixed_10",
                               "pearson_python_float_quirks", "rougel_lcs_tiebreak",
                               "rougel_long_text_multi_ref"}) {
    SCOPED_TRACE(id);
    ASSERT_EQ(cases_.count(id), 1u);
    const FixtureCase& c = cases_.at(id);
    const std::string predictions = TempDir() + "/" + id + ".pred";
    const std::string references = TempDir() + "/" + id + ".gold";
    WriteLines(predictions, c.predictions);
    std::vector<std::string> reference_lines;
    for (const auto& outputs : c.references) reference_lines.push_back(JoinTabs(outputs));
    WriteLines(references, reference_lines);
    const ToolResult result = RunEvaluate("--predictions=" + predictions + " --references=" +
                                          references + " --metric=" + c.metric);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NEAR(LastScore(result.output, c.metric), c.expected, 1e-12);
  }
}

TEST_F(EvaluateToolTest, TakesTheMetricFromTheTaskOfACrossFitTsv) {
  // mocha is a Pearson-Correlation task in CrossFit's table; the file name names the task.
  ASSERT_EQ(*MetricTable::CrossFit().MetricOf("mocha"), Metric::kPearsonCorrelation);
  const FixtureCase& c = cases_.at("pearson_python_float_quirks");
  const std::string data = TempDir() + "/mocha_32_100_test.tsv";
  std::vector<std::string> tsv_lines;
  for (size_t i = 0; i < c.references.size(); ++i) {
    tsv_lines.push_back("question " + std::to_string(i) + "\t" + JoinTabs(c.references[i]));
  }
  WriteLines(data, tsv_lines);
  const std::string predictions = TempDir() + "/mocha.pred";
  WriteLines(predictions, c.predictions);
  const ToolResult inferred = RunEvaluate("--predictions=" + predictions + " --data=" + data);
  ASSERT_EQ(inferred.exit_code, 0) << inferred.output;
  EXPECT_NEAR(LastScore(inferred.output, "Pearson-Correlation"), c.expected, 1e-12);

  // --task overrides the file name: glue-cola uses Matthew-Correlation (constant -> 0).
  const ToolResult by_task =
      RunEvaluate("--predictions=" + predictions + " --data=" + data + " --task=glue-cola");
  ASSERT_EQ(by_task.exit_code, 0) << by_task.output;
  EXPECT_EQ(LastScore(by_task.output, "Matthew-Correlation"), 0.0);
}

TEST_F(EvaluateToolTest, PerExampleScoresPrecedeTheMean) {
  const std::string predictions = TempDir() + "/per_example.pred";
  const std::string references = TempDir() + "/per_example.gold";
  WriteLines(predictions, {"  the president Barack Obama ", "blue"});  // stripped by default
  WriteLines(references, {"Barack Obama", "red\tgreen"});
  const ToolResult result = RunEvaluate("--predictions=" + predictions + " --references=" +
                                        references + " --metric=QA-F1 --per_example");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream lines(result.output);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  ASSERT_EQ(first.rfind("0\t", 0), 0u) << result.output;
  EXPECT_NEAR(std::stod(first.substr(2)), 0.8, 1e-15);  // precision 2/3, recall 1
  EXPECT_EQ(second, "1\t0");
  EXPECT_NEAR(LastScore(result.output, "QA-F1"), 0.4, 1e-15);

  const ToolResult corpus_level = RunEvaluate("--predictions=" + predictions + " --references=" +
                                              references + " --metric=Classification-F1 --per_example");
  EXPECT_NE(corpus_level.exit_code, 0);
  EXPECT_THAT(corpus_level.output, ::testing::HasSubstr("no per-example scores"));
}

TEST_F(EvaluateToolTest, ReportsTheOriginalsErrorsAndBadArguments) {
  const std::string predictions = TempDir() + "/error.pred";
  const std::string references = TempDir() + "/error.gold";
  WriteLines(predictions, {"a", "b"});
  WriteLines(references, {"a", "..."});
  const ToolResult empty_reference = RunEvaluate("--predictions=" + predictions +
                                                 " --references=" + references + " --metric=Rouge-L");
  EXPECT_NE(empty_reference.exit_code, 0);
  EXPECT_THAT(empty_reference.output, ::testing::HasSubstr("Reference is empty."));

  WriteLines(references, {"a"});
  const ToolResult mismatch = RunEvaluate("--predictions=" + predictions + " --references=" +
                                          references + " --metric=EM");
  EXPECT_NE(mismatch.exit_code, 0);
  EXPECT_THAT(mismatch.output, ::testing::HasSubstr("2 predictions for 1 examples"));

  const ToolResult unknown_task = RunEvaluate("--predictions=" + predictions + " --references=" +
                                              references + " --task=no-such-task");
  EXPECT_NE(unknown_task.exit_code, 0);
  EXPECT_THAT(unknown_task.output, ::testing::HasSubstr("no-such-task"));

  const ToolResult no_metric =
      RunEvaluate("--predictions=" + predictions + " --references=" + references);
  EXPECT_NE(no_metric.exit_code, 0);
  EXPECT_THAT(no_metric.output, ::testing::HasSubstr("give --metric"));
}

}  // namespace
}  // namespace taskmoe
