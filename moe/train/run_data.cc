#include "moe/train/run_data.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "data/gym/gym_writer.h"
#include "data/token_cache.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string OrDefault(const std::string& value, const std::string& fallback) {
  return value.empty() ? fallback : value;
}

absl::Status RequireFile(const std::string& path, const std::string& what) {
  if (!fs::is_regular_file(path)) {
    return absl::NotFoundError(absl::StrCat(what, ": no such file ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<SplitData> Tokenize(const ExperimentData& data, std::vector<TaskFile> files) {
  SplitData split;
  for (const TaskFile& file : files) {
    for (const Example& example : file.examples) split.references.push_back(example.outputs);
  }
  TokenCacheOutcome outcome;
  absl::StatusOr<TokenizedDataset> tokens =
      LoadOrTokenize(files, *data.tokenizer, {data.vocab_path, data.merges_path},
                     data.tokenize_options, TokenCacheDirectory(), &outcome);
  if (!tokens.ok()) return tokens.status();
  split.tokens = *std::move(tokens);
  LOG(INFO) << "tokenised " << split.tokens.examples.size() << " examples of "
            << split.tokens.tasks.size() << " tasks ("
            << (outcome == TokenCacheOutcome::kHit ? "from the cache" : "cached now") << "); "
            << split.tokens.truncation.Summary(data.tokenize_options.max_input_length,
                                               data.tokenize_options.max_output_length);
  return split;
}

// Generates the synthetic skill gym into data.data_dir when the config asks for it and the
// directory does not exist, or holds the gym of the same options from an older task table
// (only the process that `may_write`). A gym of other options is never replaced: it may be
// a researcher's own make_gym output.
absl::Status PrepareDataDir(const ExperimentConfig& config, bool may_write) {
  const DataConfig& d = config.data();
  gym::GymOptions options;
  options.seed = d.gym().seed();
  const bool generate = d.gym().generate_if_missing();
  const absl::Status directory = CheckDirectory(d.data_dir(), "directory");
  const bool outdated = directory.ok() && generate && gym::IsOutdatedGym(d.data_dir());
  if (directory.ok() && !outdated) return absl::OkStatus();
  if (!directory.ok() && (!generate || fs::exists(d.data_dir()))) {
    return absl::Status(directory.code(),
                        absl::StrCat("config field data.data_dir: ", directory.message()));
  }
  if (outdated && !gym::IsGymWrittenWith(d.data_dir(), options)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "config field data.data_dir: ", d.data_dir(), " holds a gym of an older task table (",
        gym::kSkillsFile, "'s table_version is not ", gym::kGymTableVersion,
        ") made with other options than data.gym's; rewrite it with make_gym or delete it"));
  }
  if (!may_write) return absl::OkStatus();
  if (outdated) {
    LOG(WARNING) << d.data_dir() << " holds the gym of an older task table; replacing it";
  }
  LOG(INFO) << "generating the synthetic skill gym (seed " << options.seed << ") into "
            << d.data_dir();
  TASKMOE_ASSIGN_OR_RETURN(const gym::GymSummary summary, gym::WriteGym(options, d.data_dir()));
  LOG(INFO) << "gym: " << summary.tasks << " tasks, " << summary.files << " files, "
            << summary.examples << " examples";
  return absl::OkStatus();
}

// The metric table (checked to cover the train tasks), the tokenizer and tokenisation options.
absl::Status LoadMetricsAndTokenizer(const ExperimentConfig& config, ExperimentData* data) {
  const DataConfig& d = config.data();
  const std::string gym_metrics = data->data_dir + "/metrics.json";
  if (!d.metrics().empty() || fs::exists(gym_metrics)) {
    TASKMOE_ASSIGN_OR_RETURN(data->metrics, MetricTable::Load(OrDefault(d.metrics(), gym_metrics)));
  } else {
    data->metrics = MetricTable::CrossFit();
  }
  for (const std::string& task : data->train_tasks) {
    TASKMOE_RETURN_IF_ERROR(data->metrics.MetricOf(task).status());
  }
  std::tie(data->vocab_path, data->merges_path) = TokenizerPaths(config);
  TASKMOE_RETURN_IF_ERROR(RequireFile(data->vocab_path, "tokenizer vocab"));
  TASKMOE_RETURN_IF_ERROR(RequireFile(data->merges_path, "tokenizer merges"));
  TASKMOE_ASSIGN_OR_RETURN(BartTokenizer tokenizer,
                           BartTokenizer::Load(data->vocab_path, data->merges_path));
  data->tokenizer = std::make_shared<const BartTokenizer>(std::move(tokenizer));
  data->tokenize_options.format.lowercase = d.lowercase();
  data->tokenize_options.format.append_another_bos = d.append_another_bos();
  data->tokenize_options.max_input_length = d.max_input_length();
  data->tokenize_options.max_output_length = d.max_output_length();
  return absl::OkStatus();
}

// Tokenised train files of the train tasks (every prefix, or data.prefix) and the dev split.
absl::Status LoadTrainAndDev(const ExperimentConfig& config, ExperimentData* data) {
  std::vector<TaskFile> train_files;
  for (const std::string& task : data->train_tasks) {
    if (!data->prefix.empty()) {
      TASKMOE_ASSIGN_OR_RETURN(TaskFile file,
                               ReadPrefixTaskFile(data->data_dir, task, data->prefix, "train"));
      train_files.push_back(std::move(file));
      continue;
    }
    TASKMOE_ASSIGN_OR_RETURN(std::vector<TaskFile> files,
                             ReadTaskFiles(data->data_dir, task, "train"));
    for (TaskFile& file : files) train_files.push_back(std::move(file));
  }
  TASKMOE_ASSIGN_OR_RETURN(data->train, Tokenize(*data, std::move(train_files)));
  TASKMOE_ASSIGN_OR_RETURN(data->dev, LoadEvaluationSplit(*data, data->train_tasks, "dev",
                                                          config.evaluation().max_dev_examples(),
                                                          data->data_dir));
  return absl::OkStatus();
}

}  // namespace

std::string TokenCacheDirectory() {
  if (const char* dir = std::getenv("TASKMOE_CACHE")) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME")) return absl::StrCat(xdg, "/taskmoe");
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "/tmp", "/.cache/taskmoe");
}

std::pair<std::string, std::string> TokenizerPaths(const ExperimentConfig& config) {
  const std::string dir = config.model().has_hf_dir()
                              ? config.model().hf_dir()
                              : config.data().data_dir() + "/" + gym::kTokenizerDir;
  return {OrDefault(config.tokenizer().vocab(), dir + "/vocab.json"),
          OrDefault(config.tokenizer().merges(), dir + "/merges.txt")};
}

std::string OntologyPath(const ExperimentConfig& config) {
  if (!config.data().ontology().empty()) return config.data().ontology();
  const std::string beside_data = config.data().data_dir() + "/ontology.json";
  return fs::exists(beside_data) ? beside_data : std::string();
}

absl::StatusOr<ExperimentData> LoadExperimentData(const ExperimentConfig& config, bool may_write) {
  const DataConfig& d = config.data();
  ExperimentData data;
  data.data_dir = d.data_dir();
  data.predict_data_dir = OrDefault(d.predict_data_dir(), d.data_dir());
  TASKMOE_RETURN_IF_ERROR(PrepareDataDir(config, may_write));
  const std::string split_path = OrDefault(d.split(), data.data_dir + "/split.json");
  TASKMOE_ASSIGN_OR_RETURN(data.split, ReadTaskSplit(split_path));
  TASKMOE_ASSIGN_OR_RETURN(data.train_tasks, SplitTasks(data.split, "train", data.data_dir));
  std::sort(data.train_tasks.begin(), data.train_tasks.end());
  if (data.train_tasks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(split_path, ": the train list is empty"));
  }
  if (const std::string ontology_path = OntologyPath(config); !ontology_path.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(data.ontology, ReadOntology(ontology_path));
  }
  TASKMOE_RETURN_IF_ERROR(LoadMetricsAndTokenizer(config, &data));
  TASKMOE_RETURN_IF_ERROR(LoadTrainAndDev(config, &data));
  return data;
}

absl::StatusOr<ExperimentData> LoadFewShotData(const ExperimentConfig& config,
                                               const std::string& task, const std::string& prefix) {
  ExperimentData data;
  data.data_dir = config.data().data_dir();
  data.predict_data_dir = OrDefault(config.data().predict_data_dir(), data.data_dir);
  data.train_tasks = {task};
  data.prefix = prefix;
  TASKMOE_RETURN_IF_ERROR(LoadMetricsAndTokenizer(config, &data));
  TASKMOE_RETURN_IF_ERROR(LoadTrainAndDev(config, &data));
  return data;
}

absl::StatusOr<SplitData> LoadEvaluationSplit(const ExperimentData& data,
                                              const std::vector<std::string>& tasks,
                                              const std::string& split, int64_t max_examples,
                                              const std::string& data_dir) {
  std::vector<TaskFile> files;
  for (const std::string& task : tasks) {
    TASKMOE_ASSIGN_OR_RETURN(TaskFile file,
                             data.prefix.empty()
                                 ? ReadSingleTaskFile(data_dir, task, split)
                                 : ReadPrefixTaskFile(data_dir, task, data.prefix, split));
    const bool truncated =
        max_examples > 0 && static_cast<int64_t>(file.examples.size()) > max_examples;
    if (truncated) file.examples.resize(max_examples);
    // A metric that needs more examples than it gets would fail (or be NaN) at every evaluation.
    TASKMOE_ASSIGN_OR_RETURN(const Metric metric, data.metrics.MetricOf(task));
    if (static_cast<int64_t>(file.examples.size()) < MinimumExamples(metric)) {
      return absl::InvalidArgumentError(absl::StrCat(
          truncated ? absl::StrCat("config field evaluation.max_dev_examples: ", max_examples,
                                   " leaves ")
                    : absl::StrCat(file.path, " holds "),
          file.examples.size(), " ", split, " example(s) of task ", task, ", whose metric ",
          std::string(MetricName(metric)), " needs at least ", MinimumExamples(metric)));
    }
    files.push_back(std::move(file));
  }
  return Tokenize(data, std::move(files));
}

}  // namespace taskmoe
