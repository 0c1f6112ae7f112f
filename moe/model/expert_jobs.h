#ifndef TASKMOE_MOE_MODEL_EXPERT_JOBS_H_
#define TASKMOE_MOE_MODEL_EXPERT_JOBS_H_

// The jobs an MoE layer splits its experts' work into (blocks of rows of one expert, or of all
// experts run batched), and running them concurrently on single-threaded OpenMP workers with
// their backward passes concurrent too. Private to the moe_layers library.

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace taskmoe {

// One run of an expert: the batch rows it computes, either listed (`rows`, int64 on the route's
// device) or, when `rows` is undefined, the contiguous rows [begin, end), which need no copy.
struct ExpertJob {
  int64_t expert = 0;  // -1: every expert (batched work)
  at::Tensor rows;
  int64_t begin = 0;
  int64_t end = 0;
  uint64_t dropout_seed = 0;  // concurrent CPU jobs: the seed of the job's dropout generator
};

// The job's rows of a per-example tensor; tensors that broadcast over the batch (size 1 in
// dimension 0, e.g. the causal bias) and undefined ones pass through.
at::Tensor SelectRows(const at::Tensor& tensor, const ExpertJob& job);

// What an expert computes for a job: its output for the job's rows, built from `inputs` (the
// tensors gradients must reach: the layer input, and the encoder states in the decoder), which
// stand in for the captured originals.
using RunExpert = std::function<at::Tensor(const ExpertJob& job, at::TensorList inputs)>;

// How many single-threaded workers run a layer's jobs concurrently: with more than one intra-op
// thread and no decoding cache, the jobs (each a block of rows; a block of all rows is a view,
// not a copy) run on single-threaded workers: on a few cores that keeps them busier than running
// one job at a time with every small operation split across threads. `inputs` as for RunJobs.
int64_t ConcurrentWorkers(bool concurrent, int64_t batch, const std::vector<at::Tensor>& inputs);

// Splits rows [0, num_rows) of `expert` (listed by `rows`, or all rows when undefined) into one
// job per worker, appended to `jobs`.
void AppendRowBlocks(int64_t expert, const at::Tensor& rows, int64_t num_rows, int64_t workers,
                     std::vector<ExpertJob>& jobs);

// Each job's output, run concurrently on `workers` single-threaded workers when there are several
// jobs and workers (each with its own seeded dropout generator on the CPU), else one after
// another. Under grad mode the concurrent jobs' backward passes run concurrently too; that
// backward builds no graph of itself, so second derivatives (create_graph) through it are not
// supported (a CHECK failure).
std::vector<at::Tensor> RunJobs(const std::vector<ExpertJob>& jobs, int64_t workers, bool on_cpu,
                                std::vector<at::Tensor> inputs, const RunExpert& run);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_EXPERT_JOBS_H_
