#ifndef TASKMOE_MOE_TRAIN_RUN_DATA_H_
#define TASKMOE_MOE_TRAIN_RUN_DATA_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "data/batching.h"
#include "data/crossfit.h"
#include "data/metrics.h"
#include "data/tokenizer.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

// The examples of one split of the run's tasks, tokenised, with what evaluation needs.
struct SplitData {
  TokenizedDataset tokens;
  // Valid outputs of every example as read from the TSV (what metrics compare against), in
  // the order of tokens.examples.
  std::vector<std::vector<std::string>> references;
};

// Everything an experiment reads from disk before training: files resolved from the config,
// the tokenizer, the task list, tokenised train and dev data (through the on-disk cache).
struct ExperimentData {
  std::string data_dir;
  std::string predict_data_dir;  // dev/test files of the final predictions
  std::string vocab_path;
  std::string merges_path;
  std::shared_ptr<const BartTokenizer> tokenizer;
  TaskSplit split;
  std::vector<std::string> train_tasks;  // sorted, as the original loads them
  MetricTable metrics;
  std::optional<Ontology> ontology;
  TokenizeOptions tokenize_options;
  SplitData train;  // every prefix's *_train.tsv of each train task
  SplitData dev;    // the single *_dev.tsv of each train task (dev loss and dev performance)
  // Set for a few-shot run of one task: every split is that prefix's file
  // (<task>/<prefix>_<split>.tsv) instead of every train file and the single dev/test file.
  std::string prefix;
};

// Where the paths the config leaves empty point: <data_dir>/split.json, <data_dir>/ontology.json,
// <data_dir>/metrics.json (else CrossFit's table), tokenizer files of model.hf_dir, else
// <data_dir>/tokenizer/. Generates the synthetic skill gym into data_dir first when data.gym
// asks for it and data_dir does not exist or holds the gym of the same options from an older
// task table (`may_write`: only the main process writes).
absl::StatusOr<ExperimentData> LoadExperimentData(const ExperimentConfig& config, bool may_write);

// The data of a few-shot run on one prefix of one task (fine-tuning): train, dev and test are
// <data_dir>/<task>/<prefix>_{train,dev,test}.tsv; metrics and tokenizer as LoadExperimentData
// finds them; no split file is read.
absl::StatusOr<ExperimentData> LoadFewShotData(const ExperimentConfig& config,
                                               const std::string& task, const std::string& prefix);

// Reads `split` ("dev" or "test") files of `tasks` (one per task) in `data_dir` (data.data_dir
// or data.predict_data_dir) for evaluation, keeping at most `max_examples` per task (0: all).
absl::StatusOr<SplitData> LoadEvaluationSplit(const ExperimentData& data,
                                              const std::vector<std::string>& tasks,
                                              const std::string& split, int64_t max_examples,
                                              const std::string& data_dir);

// The tokenizer files an experiment uses: tokenizer.vocab / tokenizer.merges, else those of
// model.hf_dir, else <data_dir>/tokenizer/ (the gym's).
std::pair<std::string, std::string> TokenizerPaths(const ExperimentConfig& config);

// The ontology an experiment groups its tasks by: data.ontology, else <data_dir>/ontology.json
// when that file exists; empty when there is none.
std::string OntologyPath(const ExperimentConfig& config);

// Directory of the tokenised-data cache: $TASKMOE_CACHE, else $XDG_CACHE_HOME/taskmoe, else
// ~/.cache/taskmoe.
std::string TokenCacheDirectory();

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_RUN_DATA_H_
