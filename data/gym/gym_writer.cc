#include "data/gym/gym_writer.h"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/bpe_trainer.h"
#include "data/gym/gym_random.h"
#include "data/gym/skills.h"
#include "data/gym/tasks.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include <glog/logging.h>
#include <nlohmann/json.hpp>

namespace taskmoe::gym {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct Example {
  std::string input;
  std::string output;
};

// `count` examples of `task` with pairwise distinct inputs and non-empty outputs.
absl::StatusOr<std::vector<Example>> GenerateDistinct(const GymTask& task, int count,
                                                      uint64_t stream_seed) {
  GymRandom random(stream_seed);
  std::set<std::string> seen_inputs;
  std::vector<Example> examples;
  // This many rejected draws in a row means the task's input space is nearly exhausted.
  constexpr int kMaxConsecutiveRejections = 10000;
  int rejections = 0;
  while (static_cast<int>(examples.size()) < count && rejections < kMaxConsecutiveRejections) {
    GymState input = GenerateInput(task.input, random);
    absl::StatusOr<GymState> output = ApplySkills(task.skills, input);
    CHECK(output.ok()) << "task " << task.name << " generated an input outside its skills: "
                       << output.status();
    Example example{FormatGymInput(input), FormatGymOutput(*output)};
    if (example.output.empty() || !seen_inputs.insert(example.input).second) {
      ++rejections;
      continue;
    }
    rejections = 0;
    examples.push_back(std::move(example));
  }
  if (static_cast<int>(examples.size()) < count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gym task ", task.name, ": found only ", examples.size(), " distinct examples (",
        kMaxConsecutiveRejections, " draws in a row repeated an input), but ", count,
        " were requested; ask for fewer examples"));
  }
  return examples;
}

// CrossFit's k-shot recipe (tasks/fewshot_gym_dataset.py): shuffle the source lines;
// classification takes the first k lines of every label (labels in order of first
// appearance) for train and the next k for dev; text-to-text takes the first k and next k.
std::pair<std::vector<Example>, std::vector<Example>> SampleFewShot(
    std::vector<Example> pool, bool classification, int k, GymRandom& random) {
  random.Shuffle(pool);
  std::vector<Example> train, dev;
  if (!classification) {
    for (int i = 0; i < static_cast<int>(pool.size()) && i < 2 * k; ++i) {
      (i < k ? train : dev).push_back(pool[i]);
    }
    return {train, dev};
  }
  std::vector<std::string> labels;
  std::map<std::string, std::vector<Example>> by_label;
  for (Example& example : pool) {
    std::vector<Example>& group = by_label[example.output];
    if (group.empty()) labels.push_back(example.output);
    group.push_back(std::move(example));
  }
  for (const std::string& label : labels) {
    const std::vector<Example>& group = by_label[label];
    for (int i = 0; i < static_cast<int>(group.size()) && i < 2 * k; ++i) {
      (i < k ? train : dev).push_back(group[i]);
    }
  }
  return {train, dev};
}

std::string TsvName(const std::string& task, int k, int seed, absl::string_view split) {
  return absl::StrCat(task, "_", k, "_", seed, "_", split, ".tsv");
}

// The example counts and shot numbers of `options`, by name.
std::vector<std::pair<const char*, int>> CountOptions(const GymOptions& options) {
  return {{"train_examples", options.train_examples},
          {"upstream_dev_examples", options.upstream_dev_examples},
          {"upstream_test_examples", options.upstream_test_examples},
          {"fewshot_pool_examples", options.fewshot_pool_examples},
          {"fewshot_test_examples", options.fewshot_test_examples},
          {"k_classification", options.k_classification},
          {"k_text_to_text", options.k_text_to_text}};
}

absl::Status CheckOptions(const GymOptions& options) {
  for (auto [name, value] : CountOptions(options)) {
    // The cap keeps sums of counts far from int overflow.
    if (value <= 0 || value > 10'000'000) {
      return absl::InvalidArgumentError(
          absl::StrCat("gym option ", name, " must be in 1..10000000, got ", value));
    }
  }
  if (options.fewshot_seeds.empty() ||
      std::set<int>(options.fewshot_seeds.begin(), options.fewshot_seeds.end()).size() !=
          options.fewshot_seeds.size()) {
    return absl::InvalidArgumentError("gym option fewshot_seeds must be non-empty and distinct");
  }
  return absl::OkStatus();
}

// skills.json of a gym that WriteGym wrote into `dir`; nullopt for anything else. Read into
// key-sorted objects, so that comparisons ignore key order (a hand-edited file may reorder).
std::optional<nlohmann::json> ReadGymSkills(const std::string& dir) {
  const absl::StatusOr<std::string> text = ReadFileBytes((fs::path(dir) / kSkillsFile).string());
  if (!text.ok()) return std::nullopt;
  nlohmann::json skills = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  // Comparisons of JSON values, not typed reads: a field of another type is a mismatch,
  // never an exception.
  if (skills.is_discarded() || !skills.is_object() || !skills.contains("generator") ||
      skills["generator"] != kGymGenerator) {
    return std::nullopt;
  }
  return skills;
}

// OK for an absent or empty directory and for a gym that WriteGym may replace (it holds only
// what WriteGym writes); an error for anything else.
absl::Status CheckReplaceable(const fs::path& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) return absl::OkStatus();
  if (!fs::is_directory(dir, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("gym output ", dir.string(), " exists and is not a directory"));
  }
  std::vector<fs::path> entries;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    entries.push_back(entry.path());
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list gym output ", dir.string(), ": ", error.message()));
  }
  if (entries.empty()) return absl::OkStatus();

  const std::string refusal =
      absl::StrCat("refusing to write the gym into ", dir.string(),
                   ": the directory is not empty and is not a gym made by make_gym");
  if (!fs::is_regular_file(dir / kSkillsFile, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat(refusal, " (it has no ", kSkillsFile, "); choose a new or empty directory"));
  }
  const std::optional<nlohmann::json> skills = ReadGymSkills(dir.string());
  if (!skills.has_value() || !skills->contains("tasks") || !(*skills)["tasks"].is_array()) {
    return absl::FailedPreconditionError(absl::StrCat(
        refusal, " (its ", kSkillsFile, " does not name generator '", kGymGenerator,
        "'); choose a new or empty directory"));
  }
  std::set<std::string> owned = {kSkillsFile, kSplitFile, kOntologyFile, kMetricsFile,
                                 kTokenizerDir};
  for (const nlohmann::json& task : (*skills)["tasks"]) {
    if (task.is_object() && task.contains("name") && task["name"].is_string()) {
      owned.insert(task["name"].get<std::string>());
    }
  }
  for (const fs::path& entry : entries) {
    if (owned.count(entry.filename().string()) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to replace the gym in ", dir.string(), ": it also holds ",
          entry.filename().string(), ", which make_gym did not write; move it away first"));
    }
  }
  return absl::OkStatus();
}

Json OptionsJson(const GymOptions& options) {
  Json json = {{"seed", options.seed}};
  for (auto [name, value] : CountOptions(options)) json[name] = value;
  json["fewshot_seeds"] = options.fewshot_seeds;
  json["vocab_size"] = options.vocab_size;
  return json;
}

Json SkillsJson(const GymOptions& options, const std::vector<GymTask>& gym_tasks) {
  std::set<Skill> train_skills;
  for (const GymTask& task : gym_tasks) {
    if (task.split == GymSplit::kTrain) train_skills.insert(task.skills.begin(), task.skills.end());
  }
  Json skills = Json::array();
  for (Skill skill : AllSkills()) {
    skills.push_back({{"name", std::string(SkillName(skill))},
                      {"description", std::string(SkillDescription(skill))},
                      {"control", train_skills.count(skill) == 0}});
  }
  Json tasks = Json::array();
  Json rows = Json::array();
  for (const GymTask& task : gym_tasks) {
    Json task_skills = Json::array();
    for (Skill skill : task.skills) task_skills.push_back(std::string(SkillName(skill)));
    tasks.push_back({{"name", task.id},
                     {"readable_name", task.name},
                     {"split", std::string(GymSplitName(task.split))},
                     {"category", task.category},
                     {"sub_category", task.sub_category},
                     {"metric", task.metric},
                     {"skills", task_skills}});
    Json row = Json::array();
    for (Skill skill : AllSkills()) {
      row.push_back(std::count(task.skills.begin(), task.skills.end(), skill) > 0 ? 1 : 0);
    }
    rows.push_back(row);
  }
  Json task_names = Json::array(), skill_names = Json::array();
  for (const GymTask& task : gym_tasks) task_names.push_back(task.id);
  for (Skill skill : AllSkills()) skill_names.push_back(std::string(SkillName(skill)));
  return {{"generator", kGymGenerator},
          {"table_version", kGymTableVersion},
          {"options", OptionsJson(options)},
          {"skills", skills},
          {"tasks", tasks},
          {"task_skill_matrix", {{"tasks", task_names}, {"skills", skill_names}, {"rows", rows}}}};
}

Json SplitJson(const std::vector<GymTask>& gym_tasks) {
  Json split = {{"train", Json::array()}, {"dev", Json::array()}, {"test", Json::array()},
                {"all", Json::array()}};
  for (const GymTask& task : gym_tasks) {
    split[std::string(GymSplitName(task.split))].push_back(task.id);
    split["all"].push_back(task.id);
  }
  return split;
}

Json OntologyJson(const std::vector<GymTask>& gym_tasks) {
  Json ontology = Json::object();
  for (const GymTask& task : gym_tasks) {
    ontology[task.category][task.sub_category].push_back(task.id);
  }
  return ontology;
}

Json MetricsJson(const std::vector<GymTask>& gym_tasks) {
  Json metrics = Json::object();
  for (const GymTask& task : gym_tasks) metrics[task.id] = task.metric;
  return metrics;
}

// The gym built in memory: file contents by path relative to the gym root, and the texts
// that the gym tokenizer learns from.
struct GymContent {
  std::map<fs::path, std::string> files;
  std::set<std::string> corpus;
  GymSummary summary;
};

// Adds one TSV file of `task` and puts its texts into the tokenizer corpus.
void AddTsv(const GymTask& task, const std::string& name, const std::vector<Example>& examples,
            GymContent* gym) {
  std::string& content = gym->files[fs::path(task.id) / name];
  for (const Example& example : examples) {
    absl::StrAppend(&content, example.input, "\t", example.output, "\n");
    gym->corpus.insert(absl::StrCat(" [", task.id, "] ", example.input));
    gym->corpus.insert(absl::StrCat(" ", example.output));
  }
  gym->summary.examples += examples.size();
}

// An upstream (train) task: one train/dev/test group of fresh examples.
absl::Status AddUpstreamTask(const GymTask& task, const GymOptions& options, GymContent* gym) {
  const int total =
      options.train_examples + options.upstream_dev_examples + options.upstream_test_examples;
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Example> examples,
                           GenerateDistinct(task, total, DeriveSeed(options.seed, task.name)));
  auto dev_begin = examples.begin() + options.train_examples;
  auto test_begin = dev_begin + options.upstream_dev_examples;
  // One prefix with seed 100 (CrossFit's first seed), so prefix discovery finds one group.
  const int seed = 100;
  AddTsv(task, TsvName(task.id, options.train_examples, seed, "train"),
         {examples.begin(), dev_begin}, gym);
  AddTsv(task, TsvName(task.id, options.train_examples, seed, "dev"), {dev_begin, test_begin},
         gym);
  AddTsv(task, TsvName(task.id, options.train_examples, seed, "test"),
         {test_begin, examples.end()}, gym);
  return absl::OkStatus();
}

// A held-out task: per few-shot seed, k-shot train/dev files drawn from one pool, and the
// same test file.
absl::Status AddFewShotTask(const GymTask& task, const GymOptions& options, GymContent* gym) {
  const uint64_t task_seed = DeriveSeed(options.seed, task.name);
  TASKMOE_ASSIGN_OR_RETURN(
      const std::vector<Example> examples,
      GenerateDistinct(task, options.fewshot_test_examples + options.fewshot_pool_examples,
                       task_seed));
  auto pool_begin = examples.begin() + options.fewshot_test_examples;
  const std::vector<Example> test(examples.begin(), pool_begin);
  const std::vector<Example> pool(pool_begin, examples.end());
  const int k = task.IsClassification() ? options.k_classification : options.k_text_to_text;
  for (int seed : options.fewshot_seeds) {
    GymRandom random(DeriveSeed(task_seed, absl::StrCat("fewshot_", seed)));
    auto [train, dev] = SampleFewShot(pool, task.IsClassification(), k, random);
    AddTsv(task, TsvName(task.id, k, seed, "train"), train, gym);
    AddTsv(task, TsvName(task.id, k, seed, "dev"), dev, gym);
    AddTsv(task, TsvName(task.id, k, seed, "test"), test, gym);
  }
  return absl::OkStatus();
}

// Every task's files and the metadata files; the summary lacks only the vocabulary size.
absl::StatusOr<GymContent> GenerateGym(const GymOptions& options) {
  GymContent gym;
  const std::vector<GymTask> tasks = GymTasksWithIds(options.seed);
  for (const GymTask& task : tasks) {
    TASKMOE_RETURN_IF_ERROR(task.split == GymSplit::kTrain ? AddUpstreamTask(task, options, &gym)
                                                           : AddFewShotTask(task, options, &gym));
    ++gym.summary.tasks;
  }
  gym.files[kSkillsFile] = SkillsJson(options, tasks).dump(2) + "\n";
  gym.files[kSplitFile] = SplitJson(tasks).dump(2) + "\n";
  gym.files[kOntologyFile] = OntologyJson(tasks).dump(2) + "\n";
  gym.files[kMetricsFile] = MetricsJson(tasks).dump(2) + "\n";
  gym.summary.files = static_cast<int>(gym.files.size());
  return gym;
}

// Writes the files and tokenizer into a staging directory beside `root`, then swaps it in
// whole: readers, and a run interrupted mid-write, see the old gym or the new one, never a mix.
absl::Status CommitGymFiles(const fs::path& root, const std::map<fs::path, std::string>& files,
                            const BpeModel& bpe) {
  TASKMOE_ASSIGN_OR_RETURN(AtomicDirectory out, AtomicDirectory::Begin(root.string()));
  const fs::path staging = out.staging();
  for (const auto& [relative, content] : files) {
    const fs::path path = staging / relative;
    TASKMOE_RETURN_IF_ERROR(CreateDirectories(path.parent_path().string()));
    TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(path.string(), content));
  }
  TASKMOE_RETURN_IF_ERROR(WriteBpeModel(bpe, (staging / kTokenizerDir).string()));
  return out.Commit();
}

}  // namespace

absl::Status CheckGymDirectory(const std::string& output_dir) {
  return CheckReplaceable(output_dir);
}

bool IsOutdatedGym(const std::string& dir) {
  const std::optional<nlohmann::json> skills = ReadGymSkills(dir);
  return skills.has_value() &&
         !(skills->contains("table_version") && (*skills)["table_version"] == kGymTableVersion);
}

bool IsGymWrittenWith(const std::string& dir, const GymOptions& options) {
  const std::optional<nlohmann::json> skills = ReadGymSkills(dir);
  return skills.has_value() &&
         skills->value("options", nlohmann::json()) == nlohmann::json(OptionsJson(options));
}

absl::StatusOr<GymSummary> WriteGym(const GymOptions& options, const std::string& output_dir) {
  TASKMOE_RETURN_IF_ERROR(CheckOptions(options));
  TASKMOE_RETURN_IF_ERROR(CheckGymDirectory(output_dir));
  // Everything is generated in memory first, so that a failure leaves an old gym intact.
  TASKMOE_ASSIGN_OR_RETURN(GymContent gym, GenerateGym(options));
  BpeTrainerOptions bpe_options;
  bpe_options.vocab_size = options.vocab_size;
  TASKMOE_ASSIGN_OR_RETURN(
      const BpeModel bpe,
      LearnBpe(std::vector<std::string>(gym.corpus.begin(), gym.corpus.end()), bpe_options));
  gym.summary.vocab_size = static_cast<int64_t>(bpe.vocab.size());
  TASKMOE_RETURN_IF_ERROR(CommitGymFiles(output_dir, gym.files, bpe));
  return gym.summary;
}

}  // namespace taskmoe::gym
