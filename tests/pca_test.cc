#include "moe/embedding/pca.h"

#include <cmath>

#include <eigen3/Eigen/Dense>
#include <gtest/gtest.h>

namespace taskmoe {
namespace {

// Points c + t * d on a line with unit direction d = (0.6, 0.8) and t = -2..2.
Eigen::MatrixXd PointsOnALine() {
  Eigen::MatrixXd points(5, 2);
  for (int i = 0; i < 5; ++i) {
    const double t = i - 2.0;
    points(i, 0) = 1.0 + 0.6 * t;
    points(i, 1) = -3.0 + 0.8 * t;
  }
  return points;
}

TEST(PcaTest, PointsOnALineHaveOneComponentAlongTheLine) {
  const absl::StatusOr<PcaResult> pca = FitPca(PointsOnALine(), 1);
  ASSERT_TRUE(pca.ok()) << pca.status();
  EXPECT_NEAR(pca->mean(0), 1.0, 1e-12);
  EXPECT_NEAR(pca->mean(1), -3.0, 1e-12);
  // Largest entry (0.8) positive by the sign convention.
  EXPECT_NEAR(pca->components(0, 0), 0.6, 1e-12);
  EXPECT_NEAR(pca->components(0, 1), 0.8, 1e-12);
  // Variance of t = -2..2 with the n - 1 denominator: 10 / 4.
  EXPECT_NEAR(pca->explained_variance(0), 2.5, 1e-12);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(pca->projected(i, 0), i - 2.0, 1e-12);
}

TEST(PcaTest, SecondComponentOfALineHasNoVariance) {
  const absl::StatusOr<PcaResult> pca = FitPca(PointsOnALine(), 2);
  ASSERT_TRUE(pca.ok()) << pca.status();
  EXPECT_NEAR(pca->explained_variance(1), 0.0, 1e-12);
  EXPECT_NEAR(std::abs(pca->components.row(0).dot(pca->components.row(1))), 0.0, 1e-12);
  EXPECT_NEAR(pca->projected.col(1).norm(), 0.0, 1e-12);
}

TEST(PcaTest, ComponentsComeInOrderOfDecreasingVariance) {
  // x spread {-3, 3, 0, 0} (variance 18/3 = 6), y spread {0, 0, -1, 1} (variance 2/3).
  Eigen::MatrixXd data(4, 2);
  data << -3, 0, 3, 0, 0, -1, 0, 1;
  const absl::StatusOr<PcaResult> pca = FitPca(data, 2);
  ASSERT_TRUE(pca.ok()) << pca.status();
  EXPECT_NEAR(pca->explained_variance(0), 6.0, 1e-12);
  EXPECT_NEAR(pca->explained_variance(1), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(pca->components(0, 0), 1.0, 1e-12);
  EXPECT_NEAR(pca->components(1, 1), 1.0, 1e-12);
}

TEST(PcaTest, SignConventionMakesComponentsIndependentOfTheDataSign) {
  const Eigen::MatrixXd data = PointsOnALine();
  const absl::StatusOr<PcaResult> pca = FitPca(data, 1);
  const absl::StatusOr<PcaResult> negated = FitPca(-data, 1);
  ASSERT_TRUE(pca.ok() && negated.ok());
  EXPECT_TRUE(pca->components.isApprox(negated->components, 1e-12));
  EXPECT_TRUE(pca->projected.isApprox(-negated->projected, 1e-12));
}

TEST(PcaTest, WideDataIsReconstructedFromAllItsComponents) {
  // 4 samples of 10 features span at most 3 centred directions.
  const Eigen::MatrixXd data = Eigen::MatrixXd::Random(4, 10);
  const absl::StatusOr<PcaResult> pca = FitPca(data, 3);
  ASSERT_TRUE(pca.ok()) << pca.status();
  const Eigen::MatrixXd identity = pca->components * pca->components.transpose();
  EXPECT_TRUE(identity.isApprox(Eigen::MatrixXd::Identity(3, 3), 1e-10));
  const Eigen::MatrixXd reconstructed =
      (pca->projected * pca->components).rowwise() + pca->mean.transpose();
  EXPECT_TRUE(reconstructed.isApprox(data, 1e-10));
  EXPECT_GE(pca->explained_variance(0), pca->explained_variance(1));
  EXPECT_GE(pca->explained_variance(1), pca->explained_variance(2));
}

TEST(PcaTest, RejectsImpossibleComponentCountsAndNonFiniteData) {
  EXPECT_EQ(FitPca(PointsOnALine(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitPca(PointsOnALine(), 3).status().code(), absl::StatusCode::kInvalidArgument);
  Eigen::MatrixXd data = PointsOnALine();
  data(2, 1) = std::nan("");
  EXPECT_EQ(FitPca(data, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace taskmoe
