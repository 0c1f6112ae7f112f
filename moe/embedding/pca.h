#ifndef TASKMOE_MOE_EMBEDDING_PCA_H_
#define TASKMOE_MOE_EMBEDDING_PCA_H_

// Principal component analysis (Eigen only, no LibTorch), used to reduce task vectors.

#include <cstdint>

#include <eigen3/Eigen/Dense>

#include "absl/status/statusor.h"

namespace taskmoe {

struct PcaResult {
  Eigen::VectorXd mean;                // [features], subtracted before projecting
  Eigen::MatrixXd components;          // [k, features], orthonormal rows, by decreasing variance
  Eigen::VectorXd explained_variance;  // [k], variance of the data along each component, n-1 denominator
                                       // (as sklearn's PCA), non-increasing
  Eigen::MatrixXd projected;           // [samples, k] = (data - mean) * components^T
};

// Fits PCA to the rows of `data` [samples, features] and projects them onto the first
// `components` principal axes (the SVD of the centred data). Sign convention: every component's
// entry of largest absolute value is positive, so results do not depend on the SVD's signs.
// Errors: components < 1, more components than min(samples, features), non-finite data.
absl::StatusOr<PcaResult> FitPca(const Eigen::MatrixXd& data, int64_t components);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_EMBEDDING_PCA_H_
