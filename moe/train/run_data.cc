#include "moe/train/run_data.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "data/gym/gym_writer.h"
#include "data/token_cache.h"
#include "glog/logging.h"

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

absl::StatusOr<ExperimentData> LoadExperimentData(const ExperimentConfig& config, bool may_write) {
  const DataConfig& d = config.data();
  ExperimentData data;
  data.data_dir = d.data_dir();
  if (!fs::is_directory(data.data_dir)) {
    if (!d.gym().generate_if_missing()) {
      return absl::NotFoundError(
          absl::StrCat("config field data.data_dir: no such directory ", data.data_dir));
    }
    if (may_write) {
      gym::GymOptions options;
      options.seed = d.gym().seed();
      LOG(INFO) << "generating the synthetic skill gym (seed " << options.seed << ") into "
                << data.data_dir;
      absl::StatusOr<gym::GymSummary> summary = gym::WriteGym(options, data.data_dir);
      if (!summary.ok()) return summary.status();
      LOG(INFO) << "gym: " << summary->tasks << " tasks, " << summary->files << " files, "
                << summary->examples << " examples";
    }
  }
  const std::string split_path = OrDefault(d.split(), data.data_dir + "/split.json");
  absl::StatusOr<TaskSplit> split = ReadTaskSplit(split_path);
  if (!split.ok()) return split.status();
  data.split = *std::move(split);
  absl::StatusOr<std::vector<std::string>> train_tasks =
      SplitTasks(data.split, "train", data.data_dir);
  if (!train_tasks.ok()) return train_tasks.status();
  data.train_tasks = *std::move(train_tasks);
  std::sort(data.train_tasks.begin(), data.train_tasks.end());
  if (data.train_tasks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(split_path, ": the train list is empty"));
  }

  const std::string ontology_path = OrDefault(d.ontology(), data.data_dir + "/ontology.json");
  if (!d.ontology().empty() || fs::exists(ontology_path)) {
    absl::StatusOr<Ontology> ontology = ReadOntology(ontology_path);
    if (!ontology.ok()) return ontology.status();
    data.ontology = *std::move(ontology);
  }
  const std::string gym_metrics = data.data_dir + "/metrics.json";
  if (!d.metrics().empty() || fs::exists(gym_metrics)) {
    absl::StatusOr<MetricTable> metrics = MetricTable::Load(OrDefault(d.metrics(), gym_metrics));
    if (!metrics.ok()) return metrics.status();
    data.metrics = *std::move(metrics);
  } else {
    data.metrics = MetricTable::CrossFit();
  }
  for (const std::string& task : data.train_tasks) {
    if (absl::StatusOr<Metric> metric = data.metrics.MetricOf(task); !metric.ok()) {
      return metric.status();
    }
  }

  std::tie(data.vocab_path, data.merges_path) = TokenizerPaths(config);
  if (absl::Status s = RequireFile(data.vocab_path, "tokenizer vocab"); !s.ok()) return s;
  if (absl::Status s = RequireFile(data.merges_path, "tokenizer merges"); !s.ok()) return s;
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::Load(data.vocab_path, data.merges_path);
  if (!tokenizer.ok()) return tokenizer.status();
  data.tokenizer = std::make_shared<const BartTokenizer>(*std::move(tokenizer));

  data.tokenize_options.format.lowercase = d.lowercase();
  data.tokenize_options.format.append_another_bos = d.append_another_bos();
  data.tokenize_options.max_input_length = d.max_input_length();
  data.tokenize_options.max_output_length = d.max_output_length();

  std::vector<TaskFile> train_files;
  for (const std::string& task : data.train_tasks) {
    absl::StatusOr<std::vector<TaskFile>> files = ReadTaskFiles(data.data_dir, task, "train");
    if (!files.ok()) return files.status();
    for (TaskFile& file : *files) train_files.push_back(std::move(file));
  }
  absl::StatusOr<SplitData> train = Tokenize(data, std::move(train_files));
  if (!train.ok()) return train.status();
  data.train = *std::move(train);
  absl::StatusOr<SplitData> dev = LoadEvaluationSplit(
      data, data.train_tasks, "dev", config.evaluation().max_dev_examples());
  if (!dev.ok()) return dev.status();
  data.dev = *std::move(dev);
  return data;
}

absl::StatusOr<SplitData> LoadEvaluationSplit(const ExperimentData& data,
                                              const std::vector<std::string>& tasks,
                                              const std::string& split, int64_t max_examples) {
  std::vector<TaskFile> files;
  for (const std::string& task : tasks) {
    absl::StatusOr<TaskFile> file = ReadSingleTaskFile(data.data_dir, task, split);
    if (!file.ok()) return file.status();
    if (max_examples > 0 && static_cast<int64_t>(file->examples.size()) > max_examples) {
      file->examples.resize(max_examples);
    }
    files.push_back(*std::move(file));
  }
  return Tokenize(data, std::move(files));
}

}  // namespace taskmoe
