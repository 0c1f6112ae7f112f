#ifndef TASKMOE_DATA_DENOISING_CORPUS_H_
#define TASKMOE_DATA_DENOISING_CORPUS_H_

// A denoising pre-training corpus in the CrossFit layout, so the ordinary trainer pre-trains a
// dense model on it (the gym's stand-in for BART's pre-training): the unlabeled inputs of a
// data set's tasks, each corrupted by text infilling (data/denoising.h), with the clean text
// as the output. Only inputs are read, never outputs, so no task's labels leak into the
// pretrained model.
//
// Written into output_dir (atomically, as one directory):
//   denoise/denoise_<n>_100_{train,dev,test}.tsv   "<corrupted text>\t<text>" per line
//   split.json    {"train": ["denoise"], "dev": [], "test": [], "all": ["denoise"]}
//   metrics.json  {"denoise": "EM"}
//   tokenizer/    the data set's vocab.json and merges.txt (the corpus is in its token space)
// Train lines: `copies` differently noised versions of every input of the listed tasks'
// *_train.tsv files (static masking, as BERT's duplicated data). Dev and test lines: one
// noised version of each input of their *_dev.tsv / *_test.tsv files.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "data/denoising.h"

namespace taskmoe {

// The task name of the corpus.
inline constexpr char kDenoisingTask[] = "denoise";

struct DenoisingCorpusOptions {
  std::string data_dir;
  std::string split_file;             // empty: <data_dir>/split.json
  std::string split_list = "train";   // which tasks' inputs to read
  std::string tokenizer_dir;          // empty: <data_dir>/tokenizer
  std::string output_dir;
  int copies = 4;
  uint64_t seed = 1;
  TextInfillingOptions noise;
};

struct DenoisingCorpusSummary {
  int64_t tasks = 0;
  int64_t texts = 0;  // distinct training inputs
  int64_t train_lines = 0;
  int64_t dev_lines = 0;
  int64_t test_lines = 0;
  double masked_fraction = 0;  // of the training tokens
};

// Errors name the file or option at fault; an existing output_dir is replaced only as a whole.
absl::StatusOr<DenoisingCorpusSummary> WriteDenoisingCorpus(const DenoisingCorpusOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_DENOISING_CORPUS_H_
