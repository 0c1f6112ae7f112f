// Runs tools/analyze_routes on small routes files written here: the JSON fields per file and
// over files, the ontology basis, and errors that name the file at fault.
#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "nlohmann/json.hpp"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::ToolResult;

ToolResult RunAnalyzeRoutes(const std::string& arguments) {
  return testing::RunToolBinary("analyze_routes", arguments);
}

// Six tasks: four train tasks in two skill groups, two held out; each group routed to its own
// expert in every layer (with `noise` moving weight to the third expert).
const std::vector<std::string> kTasks = {"sort_a", "sort_b", "rot_a", "rot_b", "sort_new",
                                         "rot_new"};

std::string WriteRun(const std::string& name, float noise) {
  const std::string dir = (fs::path(::testing::TempDir()) / name).string();
  fs::create_directories(dir);
  at::Tensor routes = at::zeros({6, 2, 3});
  for (int task = 0; task < 6; ++task) {
    const int expert = task == 2 || task == 3 || task == 5 ? 1 : 0;
    routes[task].select(1, expert).fill_(1 - noise * task);
    routes[task].select(1, 2).fill_(noise * task);
  }
  EXPECT_TRUE(WriteNpy(dir + "/route.npy", routes).ok());
  EXPECT_TRUE(TaskTable::WriteNames(kTasks, dir + "/route_tasks.json").ok());
  return dir;
}

std::string WriteSkills() {
  const std::string path = (fs::path(::testing::TempDir()) / "skills.json").string();
  EXPECT_TRUE(WriteFileAtomically(path, R"({"skills": [{"name": "sort"}, {"name": "filter"},
      {"name": "rotate"}], "tasks": [
      {"name": "sort_a", "split": "train", "skills": ["sort"]},
      {"name": "sort_b", "split": "train", "skills": ["sort", "filter"]},
      {"name": "rot_a", "split": "train", "skills": ["rotate"]},
      {"name": "rot_b", "split": "train", "skills": ["rotate", "filter"]},
      {"name": "sort_new", "split": "dev", "readable_name": "x", "skills": ["sort"]},
      {"name": "rot_new", "split": "test", "skills": ["rotate"]}]})")
                  .ok());
  return path;
}

TEST(AnalyzeRoutesToolTest, ReportsEveryFileAndTheMeanAsJson) {
  const std::string a = WriteRun("seed_a", 0.01f);
  const std::string b = WriteRun("seed_b", 0.02f);
  const std::string json_path = (fs::path(::testing::TempDir()) / "agreement.json").string();
  const ToolResult result =
      RunAnalyzeRoutes("--routes=" + a + "/route.npy," + b + "/route.npy --skills=" +
                       WriteSkills() + " --permutations=199 --seed=3 --json=" + json_path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("| mean [95% bootstrap CI] over 2 files"), std::string::npos)
      << result.output;

  const nlohmann::json json = nlohmann::json::parse(ReadFileBytes(json_path).value());
  EXPECT_EQ(json["basis"], "skills");
  EXPECT_EQ(json["permutations"], 199);
  ASSERT_EQ(json["files"].size(), 2u);
  const nlohmann::json& file = json["files"][0];
  EXPECT_EQ(file["routes"], a + "/route.npy");
  EXPECT_EQ(file["route_tasks"], a + "/route_tasks.json");
  EXPECT_EQ(file["n_tasks"], 6);
  EXPECT_EQ(file["n_pairs"], 15);
  EXPECT_GT(file["spearman_rho"].get<double>(), 0.5);
  EXPECT_GT(file["p_value"].get<double>(), 0.0);
  EXPECT_LE(file["p_value"].get<double>(), 0.2);
  EXPECT_TRUE(file["partial_spearman_rho"].is_null());
  EXPECT_EQ(file["held_out"]["n_held_out"], 2);
  EXPECT_EQ(file["held_out"]["n_train"], 4);
  EXPECT_DOUBLE_EQ(file["held_out"]["fraction_sharing_skill"].get<double>(), 1.0);
  const nlohmann::json& mean = json["mean"];
  EXPECT_EQ(mean["n_files"], 2);
  ASSERT_EQ(mean["spearman_rho"]["ci95"].size(), 2u);
  EXPECT_LE(mean["spearman_rho"]["ci95"][0].get<double>(),
            mean["spearman_rho"]["mean"].get<double>());
  EXPECT_TRUE(mean["partial_spearman_rho"].is_null());
  EXPECT_DOUBLE_EQ(mean["held_out_fraction"]["mean"].get<double>(), 1.0);
}

TEST(AnalyzeRoutesToolTest, OntologyCategoriesAndTaskVectors) {
  const std::string a = WriteRun("seed_ontology", 0.01f);
  const std::string ontology = a + "/ontology.json";
  ASSERT_TRUE(WriteFileAtomically(ontology, R"({"sorting": {"s": ["sort_a", "sort_b", "sort_new"]},
      "rotating": {"r": ["rot_a", "rot_b", "rot_new"]}})")
                  .ok());
  ASSERT_TRUE(TaskTable::Create(kTasks, at::randn({6, 4})).value().Save(a).ok());
  const std::string json_path = a + "/agreement.json";
  const ToolResult result =
      RunAnalyzeRoutes("--routes=" + a + "/route.npy --ontology=" + ontology + " --task_vectors=" +
                       a + " --permutations=99 --json=" + json_path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(ReadFileBytes(json_path).value());
  EXPECT_EQ(json["basis"], "categories");
  EXPECT_TRUE(json["files"][0]["partial_spearman_rho"].is_number());
  EXPECT_TRUE(json["files"][0]["partial_p_value"].is_number());
  EXPECT_TRUE(json["files"][0]["held_out"].is_null());  // an ontology holds no split
}

TEST(AnalyzeRoutesToolTest, ErrorsNameTheFileAtFault) {
  const std::string a = WriteRun("seed_errors", 0.01f);
  const std::string skills = WriteSkills();
  ToolResult result = RunAnalyzeRoutes("--skills=" + skills);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("analyze_routes: --routes is required"), std::string::npos)
      << result.output;

  result = RunAnalyzeRoutes("--routes=" + a + "/route.npy --skills=" + skills + " --ontology=" +
                            skills);
  EXPECT_NE(result.output.find("exactly one of --skills and --ontology"), std::string::npos)
      << result.output;

  result = RunAnalyzeRoutes("--routes=" + a + "/route.npy --skills=" + skills +
                            " --route_tasks=x.json,y.json");
  EXPECT_NE(result.output.find("--route_tasks names 2 entries for 1 routes files"),
            std::string::npos)
      << result.output;

  const std::string five_tasks = a + "/five_tasks.json";
  ASSERT_TRUE(TaskTable::WriteNames({kTasks.begin(), kTasks.begin() + 5}, five_tasks).ok());
  result = RunAnalyzeRoutes("--routes=" + a + "/route.npy --route_tasks=" + five_tasks +
                            " --skills=" + skills);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find(a + "/route.npy has 6 rows but " + five_tasks + " names 5 tasks"),
            std::string::npos)
      << result.output;

  const std::string renamed = a + "/renamed_tasks.json";
  std::vector<std::string> names = kTasks;
  names[2] = "mystery";
  ASSERT_TRUE(TaskTable::WriteNames(names, renamed).ok());
  result = RunAnalyzeRoutes("--routes=" + a + "/route.npy --route_tasks=" + renamed +
                            " --skills=" + skills);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find(skills + " has no task \"mystery\" (row 2 of " + renamed + ")"),
            std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace taskmoe
