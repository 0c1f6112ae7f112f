#include "moe/embedding/pca.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace taskmoe {

absl::StatusOr<PcaResult> FitPca(const Eigen::MatrixXd& data, int64_t components) {
  const int64_t samples = data.rows();
  const int64_t features = data.cols();
  if (components < 1) {
    return absl::InvalidArgumentError(absl::StrCat("PCA: components must be >= 1, got ", components));
  }
  if (components > std::min(samples, features)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PCA: ", components, " components requested from ", samples, " samples of ", features,
        " features; at most min(samples, features) = ", std::min(samples, features)));
  }
  if (!data.allFinite()) {
    return absl::InvalidArgumentError("PCA: the data holds NaN or infinite values");
  }
  PcaResult result;
  result.mean = data.colwise().mean().transpose();
  const Eigen::MatrixXd centred = data.rowwise() - result.mean.transpose();
  // Thin SVD: centred = U S V^T; the principal axes are the columns of V.
  Eigen::BDCSVD<Eigen::MatrixXd> svd(centred, Eigen::ComputeThinU | Eigen::ComputeThinV);
  result.components = svd.matrixV().leftCols(components).transpose();
  for (int64_t k = 0; k < components; ++k) {
    Eigen::Index largest = 0;
    result.components.row(k).cwiseAbs().maxCoeff(&largest);
    if (result.components(k, largest) < 0) result.components.row(k) *= -1.0;
  }
  const double denominator = static_cast<double>(std::max<int64_t>(samples - 1, 1));
  result.explained_variance =
      svd.singularValues().head(components).array().square().matrix() / denominator;
  result.projected = centred * result.components.transpose();
  return result;
}

}  // namespace taskmoe
