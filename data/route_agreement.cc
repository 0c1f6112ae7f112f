#include "data/route_agreement.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// A permuted statistic this close to the observed one counts as reaching it: the identity
// permutation must reproduce the observed value although sums run in another order.
constexpr double kTieTolerance = 1e-12;

// Average ranks minus their mean, with their sum of squares: every correlation below is a dot
// product of two of these, and permuting labels changes neither the mean nor the sum.
struct CenteredRanks {
  std::vector<double> values;
  double sum_squares = 0;
};

CenteredRanks Center(absl::Span<const double> values) {
  CenteredRanks centered;
  centered.values = AverageRanks(values);
  const double mean = (values.size() + 1) / 2.0;
  for (double& v : centered.values) {
    v -= mean;
    centered.sum_squares += v * v;
  }
  return centered;
}

double Dot(absl::Span<const double> a, absl::Span<const double> b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// NaN when either side is constant (its ranks all tie).
double Correlation(const CenteredRanks& a, const CenteredRanks& b) {
  if (a.sum_squares <= 0 || b.sum_squares <= 0) return kNaN;
  return Dot(a.values, b.values) / std::sqrt(a.sum_squares * b.sum_squares);
}

// Fisher-Yates with a plain modulo draw (bias below 2^-50 for any task count here), so that
// the permutations of a seed are the same with every standard library.
void Shuffle(std::vector<int>* order, std::mt19937_64* rng) {
  for (size_t i = order->size(); i > 1; --i) {
    std::swap((*order)[i - 1], (*order)[(*rng)() % i]);
  }
}

std::vector<int> Identity(size_t n) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  return order;
}

double PValue(int64_t hits, int permutations) {
  return (1.0 + hits) / (1.0 + permutations);
}

// The values of an n x n symmetric matrix above the diagonal, row by row: one per task pair.
std::vector<double> UpperTriangle(const std::vector<double>& matrix, int n) {
  std::vector<double> pairs;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) pairs.push_back(matrix[i * n + j]);
  }
  return pairs;
}

// Spearman rho of route vs skill similarity (and the partial one given `vector_sim`), each
// against the same permutations of the skill matrix's task labels.
void PairTests(const std::vector<double>& route_sim, const std::vector<double>& skill_sim,
               const std::vector<double>* vector_sim, int n, const AgreementOptions& options,
               RouteAgreement* result) {
  const CenteredRanks x = Center(UpperTriangle(route_sim, n));
  const CenteredRanks y = Center(UpperTriangle(skill_sim, n));
  const double r_xy = Correlation(x, y);
  result->spearman = {r_xy, kNaN};
  CenteredRanks z;
  double r_xz = 0, r_yz = 0, partial = kNaN;
  if (vector_sim != nullptr) {
    z = Center(UpperTriangle(*vector_sim, n));
    // A constant z explains nothing: partialling it out leaves x and y as they are.
    if (z.sum_squares > 0) {
      r_xz = Correlation(x, z);
      r_yz = Correlation(y, z);
    }
    partial = PartialCorrelation(r_xy, r_xz, r_yz);
    result->partial = PermutationTest{partial, kNaN};
  }
  if (std::isnan(r_xy)) return;
  // y's ranks as a task x task matrix, so that permuting task labels only re-indexes it.
  std::vector<double> y_matrix(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0, p = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j, ++p) y_matrix[i * n + j] = y_matrix[j * n + i] = y.values[p];
  }
  std::mt19937_64 rng(options.seed);
  std::vector<int> order = Identity(n);
  int64_t plain_hits = 0, partial_hits = 0;
  for (int k = 0; k < options.permutations; ++k) {
    Shuffle(&order, &rng);
    double xy = 0, zy = 0;
    for (int i = 0, p = 0; i < n; ++i) {
      const double* row = &y_matrix[static_cast<size_t>(order[i]) * n];
      for (int j = i + 1; j < n; ++j, ++p) {
        const double yv = row[order[j]];
        xy += x.values[p] * yv;
        if (z.sum_squares > 0) zy += z.values[p] * yv;
      }
    }
    const double r_xy_perm = xy / std::sqrt(x.sum_squares * y.sum_squares);
    if (r_xy_perm >= r_xy - kTieTolerance) ++plain_hits;
    if (vector_sim != nullptr && !std::isnan(partial)) {
      const double r_yz_perm = z.sum_squares > 0 ? zy / std::sqrt(z.sum_squares * y.sum_squares)
                                                 : 0.0;
      if (PartialCorrelation(r_xy_perm, r_xz, r_yz_perm) >= partial - kTieTolerance) {
        ++partial_hits;
      }
    }
  }
  result->spearman.p_value = PValue(plain_hits, options.permutations);
  if (result->partial.has_value() && !std::isnan(partial)) {
    result->partial->p_value = PValue(partial_hits, options.permutations);
  }
}

// Held-out task h's nearest train task (the first of equally near ones) shares a skill with h
// or not; the null gives the train tasks one another's skill sets.
std::optional<HeldOutNeighbours> HeldOutTest(
    const std::vector<double>& route_sim, const std::vector<const std::vector<std::string>*>& skills,
    const std::vector<bool>& held_out, const AgreementOptions& options) {
  const int n = static_cast<int>(skills.size());
  std::vector<int> train, held;
  for (int i = 0; i < n; ++i) (held_out[i] ? held : train).push_back(i);
  if (held.empty() || train.empty()) return std::nullopt;
  const size_t t = train.size();
  std::vector<bool> shares(held.size() * t);  // held-out h x train k: a skill in common?
  std::vector<int> nearest(held.size());
  for (size_t h = 0; h < held.size(); ++h) {
    for (size_t k = 0; k < t; ++k) {
      shares[h * t + k] = Jaccard(*skills[held[h]], *skills[train[k]]) > 0;
      const double sim = route_sim[held[h] * n + train[k]];
      if (sim > route_sim[held[h] * n + train[nearest[h]]]) nearest[h] = static_cast<int>(k);
    }
  }
  const auto fraction = [&](const std::vector<int>& order) {
    int sharing = 0;
    for (size_t h = 0; h < held.size(); ++h) sharing += shares[h * t + order[nearest[h]]];
    return static_cast<double>(sharing) / held.size();
  };
  HeldOutNeighbours result;
  result.held_out_tasks = static_cast<int>(held.size());
  result.train_tasks = static_cast<int>(t);
  std::vector<int> order = Identity(t);
  result.fraction = fraction(order);
  std::mt19937_64 rng(options.seed);
  int64_t hits = 0;
  double null_sum = 0;
  for (int k = 0; k < options.permutations; ++k) {
    Shuffle(&order, &rng);
    const double null = fraction(order);
    null_sum += null;
    if (null >= result.fraction - kTieTolerance) ++hits;
  }
  result.null_mean = options.permutations > 0 ? null_sum / options.permutations : kNaN;
  result.p_value = PValue(hits, options.permutations);
  return result;
}

absl::Status CheckRoutes(const NamedRoutes& routes) {
  const size_t row = static_cast<size_t>(std::max<int64_t>(0, routes.layers * routes.experts));
  if (row == 0 || routes.values.size() % row != 0) {
    return absl::InvalidArgumentError(absl::StrCat(routes.source, ": ", routes.values.size(),
                                                   " route weights are not rows of [",
                                                   routes.layers, ", ", routes.experts, "]"));
  }
  if (routes.values.size() / row != routes.tasks.size()) {
    return absl::InvalidArgumentError(absl::StrCat(routes.source, " has ",
                                                   routes.values.size() / row, " rows but ",
                                                   routes.tasks_source, " names ",
                                                   routes.tasks.size(), " tasks"));
  }
  if (routes.tasks.size() < 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        routes.source, ": ", routes.tasks.size(), " tasks; a rank correlation needs at least 3"));
  }
  const std::set<std::string_view> unique(routes.tasks.begin(), routes.tasks.end());
  if (unique.size() != routes.tasks.size()) {
    return absl::InvalidArgumentError(routes.tasks_source + " names a task twice");
  }
  for (size_t i = 0; i < routes.values.size(); ++i) {
    if (!std::isfinite(routes.values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(routes.source, ": row ", i / row,
                                                     " holds a non-finite route weight"));
    }
  }
  return absl::OkStatus();
}

// Cosine similarity of every pair of the routes' tasks' vectors, as an n x n matrix.
absl::StatusOr<std::vector<double>> VectorSimilarities(const NamedRoutes& routes,
                                                       const AgreementOptions& options) {
  const size_t n = routes.tasks.size();
  std::vector<const std::vector<float>*> vectors;
  for (size_t i = 0; i < n; ++i) {
    const auto it = options.task_vectors.find(routes.tasks[i]);
    if (it == options.task_vectors.end()) {
      return absl::NotFoundError(absl::StrCat(options.task_vectors_source, " has no vector of task \"",
                                              routes.tasks[i], "\" (row ", i, " of ",
                                              routes.tasks_source, ")"));
    }
    if (!vectors.empty() && it->second.size() != vectors.front()->size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.task_vectors_source, ": task vectors of different sizes"));
    }
    vectors.push_back(&it->second);
  }
  std::vector<double> sim(n * n, 1.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      sim[i * n + j] = sim[j * n + i] = CosineSimilarity(*vectors[i], *vectors[j]);
    }
  }
  return sim;
}

}  // namespace

TaskSkillTable SkillsFromOntology(const Ontology& ontology, const std::string& source) {
  TaskSkillTable table;
  table.source = source;
  for (const std::string& task : ontology.TasksInOrder()) {
    table.skills.emplace(task, std::vector<std::string>{ontology.CategoryOf(task)});
  }
  return table;
}

void HoldOutAllBut(const std::vector<std::string>& train_tasks, TaskSkillTable* table) {
  const std::set<std::string_view> train(train_tasks.begin(), train_tasks.end());
  table->held_out.clear();
  for (const auto& entry : table->skills) {
    if (train.count(entry.first) == 0) table->held_out.insert(entry.first);
  }
}

double RouteSimilarity(absl::Span<const float> a, absl::Span<const float> b, int64_t layers) {
  CHECK_EQ(a.size(), b.size());
  CHECK_GT(layers, 0);
  CHECK_EQ(a.size() % layers, 0u);
  // The layers' total-variation distances summed, hence divided by `layers` for their mean.
  double total_variation = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    total_variation += 0.5 * std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
  }
  return 1.0 - total_variation / layers;
}

double Jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> common;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
  const size_t either = a.size() + b.size() - common.size();
  return either == 0 ? 0.0 : static_cast<double>(common.size()) / either;
}

double CosineSimilarity(absl::Span<const float> a, absl::Span<const float> b) {
  CHECK_EQ(a.size(), b.size());
  double dot = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  // A zero vector points nowhere: it is as unlike every vector as an orthogonal one.
  return aa > 0 && bb > 0 ? dot / std::sqrt(aa * bb) : 0.0;
}

std::vector<double> AverageRanks(absl::Span<const double> values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t start = 0; start < order.size();) {
    size_t end = start + 1;
    while (end < order.size() && values[order[end]] == values[order[start]]) ++end;
    const double rank = (start + end + 1) / 2.0;  // mean of the 1-based ranks start+1..end
    for (size_t i = start; i < end; ++i) ranks[order[i]] = rank;
    start = end;
  }
  return ranks;
}

double SpearmanRho(absl::Span<const double> x, absl::Span<const double> y) {
  CHECK_EQ(x.size(), y.size());
  return Correlation(Center(x), Center(y));
}

double PartialCorrelation(double r_xy, double r_xz, double r_yz) {
  const double denominator = std::sqrt((1 - r_xz * r_xz) * (1 - r_yz * r_yz));
  return denominator > 0 ? (r_xy - r_xz * r_yz) / denominator : kNaN;
}

absl::StatusOr<RouteAgreement> MeasureRouteAgreement(const NamedRoutes& routes,
                                                     const TaskSkillTable& skills,
                                                     const AgreementOptions& options) {
  if (options.permutations < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("permutations must be at least 1, not ", options.permutations));
  }
  TASKMOE_RETURN_IF_ERROR(CheckRoutes(routes));
  const int n = static_cast<int>(routes.tasks.size());
  const size_t row = routes.layers * routes.experts;
  std::vector<const std::vector<std::string>*> task_skills;
  std::vector<bool> held_out;
  for (int i = 0; i < n; ++i) {
    const auto it = skills.skills.find(routes.tasks[i]);
    if (it == skills.skills.end()) {
      return absl::NotFoundError(absl::StrCat(skills.source, " has no task \"", routes.tasks[i],
                                              "\" (row ", i, " of ", routes.tasks_source, ")"));
    }
    task_skills.push_back(&it->second);
    held_out.push_back(skills.held_out.count(routes.tasks[i]) > 0);
  }
  std::vector<double> route_sim(static_cast<size_t>(n) * n, 1.0);
  std::vector<double> skill_sim(static_cast<size_t>(n) * n, 1.0);
  const absl::Span<const float> values(routes.values);
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      route_sim[i * n + j] = route_sim[j * n + i] = RouteSimilarity(
          values.subspan(i * row, row), values.subspan(j * row, row), routes.layers);
      skill_sim[i * n + j] = skill_sim[j * n + i] = Jaccard(*task_skills[i], *task_skills[j]);
    }
  }
  std::optional<std::vector<double>> vector_sim;
  if (!options.task_vectors.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(vector_sim, VectorSimilarities(routes, options));
  }
  RouteAgreement result;
  result.n_tasks = n;
  result.n_pairs = n * (n - 1) / 2;
  PairTests(route_sim, skill_sim, vector_sim.has_value() ? &*vector_sim : nullptr, n, options,
            &result);
  result.held_out = HeldOutTest(route_sim, task_skills, held_out, options);
  return result;
}

}  // namespace taskmoe
