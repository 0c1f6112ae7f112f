#ifndef TASKMOE_MOE_WORKFLOW_FINETUNE_H_
#define TASKMOE_MOE_WORKFLOW_FINETUNE_H_

// Few-shot fine-tuning of a list of tasks, as CrossFit's tune_hps_singletask.py and
// CrossTaskMoE's example_scripts/finetune_a_list_of_tasks*.sh do it: for every few-shot prefix
// (<task>_<k>_<seed>) of every task and every (learning rate, batch size) of a grid, train on the
// prefix's train file with early selection on its dev file, evaluate test with the selected
// weights, and record the scores in <output_dir>/<task>/result.csv.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

struct FinetuneOptions {
  // Template of every run: model source, data (data_dir holds the task directories; lengths,
  // tokenizer, metrics), optimizer, training (total_steps, eval_period, ...) and evaluation.
  // Each run trains on one prefix's files and overrides output_dir, optimizer.lr,
  // training.train_batch_size and evaluation.do_predict (always on: test scores are recorded).
  //
  // Model sources:
  //  - model.hf_dir or model.random_init: as the trainer builds them (experts 1 = a dense
  //    model); base.routing must name a plugin.
  //  - model.checkpoint (a TaskMoE checkpoint, dense or MoE): its experts and vanilla layers are
  //    used. When base has no routing section, the task's route comes from the checkpoint's own
  //    plugin (router state loaded) applied to the task's vector, at the end of the checkpoint's
  //    temperature schedule (step = its training.total_steps), and stays fixed while
  //    fine-tuning (routing.fixed_routes_npy). When base names a plugin, that plugin starts
  //    fresh; the checkpoint's router is not used.
  ExperimentConfig base;
  // A directory with id2task.json + task_vecs.npy holding vectors for the tasks (e.g. from
  // tools/compute_task_embeddings over the split's "all" list). Empty: the checkpoint's table.
  // A task without a vector is an error only when its route depends on the vector.
  std::string task_vectors_dir;
  // Experts to switch off when a task's route is taken from the checkpoint's router (an ablation,
  // the original's get_routes(override)); the format of routing.eval_expert_mask. A plugin named
  // in base.routing takes base.routing.eval_expert_mask instead.
  std::string inherited_expert_mask;
  std::vector<std::string> tasks;
  // > 0: only the first max_prefixes prefixes of each task in discovery order (a smaller
  // sweep; the original fine-tunes every prefix).
  int max_prefixes = 0;
  // The grid. With base.training.total_steps 0 (evaluation only, e.g. zero-shot) nothing is
  // trained: both stay empty and each prefix has one row, lr 0 and bsz 0, scored with the
  // initial model and the task's route.
  std::vector<double> learning_rates;
  std::vector<int> batch_sizes;
  // <output_dir>/<task>/result.csv, and per task: init/ (checkpoint sources: the task's
  // one-row task table and, with inherited routing, task_routes.npy) and
  // runs/<prefix>/lr_<lr>_bsz_<bsz>/ (each run's trainer outputs). A prefix's data is read once
  // for its grid points and handed to the trainer in memory.
  std::string output_dir;
  // Keep the best/last checkpoints of every run; by default they are deleted once the run's
  // scores are recorded (predictions, logs and losses stay).
  bool keep_checkpoints = false;
};

// One row of result.csv.
struct FinetuneResult {
  std::string prefix;  // "<task>_<k>_<seed>", or "<task>_<k>_<seed>_best" for a prefix's best
  double lr = 0;
  int bsz = 0;
  double dev_performance = 0;
  double test_performance = 0;
};

struct FinetuneReport {
  // result.csv rows of every task, in the order of options.tasks.
  std::vector<std::vector<FinetuneResult>> results;
  int runs_trained = 0;       // grid points trained by this call
  int runs_reused = 0;        // grid points of unfinished prefixes already in result.csv
  int prefixes_skipped = 0;   // prefixes whose _best row was already in result.csv
};

// Runs the grid for every prefix of every task. Resumable: a prefix with a `<prefix>_best` row
// in result.csv is skipped, a grid point already recorded for an unfinished prefix is not
// trained again; result.csv is rewritten atomically after every grid point. Every task's
// prefixes and files are checked before anything is trained: an unknown task, a task without
// few-shot files, or a prefix missing its train/dev/test file is an error naming the path.
absl::StatusOr<FinetuneReport> FinetuneTasks(const FinetuneOptions& options);

// result.csv as pandas' DataFrame.to_csv writes it in the original: an unnamed index column,
// then prefix,lr,bsz,dev_performance,test_performance, floats as Python's repr (read back with
// data/results.h ParseResultCsv).
std::string FinetuneResultsCsv(const std::vector<FinetuneResult>& results);

// Python's repr() of a float (shortest round trip; "1e-05", "0.0001", "100.0", "1e+16").
std::string PythonFloatRepr(double value);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_WORKFLOW_FINETUNE_H_
