#include "moe/embedding/task_embedding.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "task_embeddings/fisher/fisher.pb.h"
#include "task_embeddings/ft_text_emb/ft_text_emb.pb.h"
#include "task_embeddings/random/random.pb.h"
#include "task_embeddings/text_emb/text_emb.pb.h"
#include "tests/task_embedding_fixture.h"

namespace taskmoe {
namespace {

using ::taskmoe::testing::InputFor;
using ::taskmoe::testing::Pack;
using ::taskmoe::testing::TinyDataset;

TEST(TaskEmbeddingTest, RegistryListsEveryBuiltInMethod) {
  const std::vector<std::string> names = RegisteredTaskEmbeddingMethods();
  for (const char* method : {"fisher", "ft_text_emb", "random", "text_emb"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), method), names.end()) << method;
  }
}

TEST(TaskEmbeddingTest, UnknownMethodListsRegisteredNames) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingRequest request;
  request.method = "no_such_method";
  const absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, InputFor(nullptr, data));
  EXPECT_EQ(table.status().code(), absl::StatusCode::kNotFound);
  // The built-in methods among the registered ones (a user may have added more).
  for (const char* name : {"fisher", "ft_text_emb", "random", "text_emb"}) {
    EXPECT_NE(table.status().message().find(name), std::string::npos) << table.status();
  }
}

TEST(TaskEmbeddingTest, RandomIsDeterministicPerSeedAndNeedsNoModel) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingRequest request;
  request.method = "random";
  request.context.dim = 5;
  request.context.seed = 7;
  const absl::StatusOr<TaskTable> first = ComputeTaskEmbeddings(request, InputFor(nullptr, data));
  const absl::StatusOr<TaskTable> again = ComputeTaskEmbeddings(request, InputFor(nullptr, data));
  request.context.seed = 8;
  const absl::StatusOr<TaskTable> other = ComputeTaskEmbeddings(request, InputFor(nullptr, data));
  ASSERT_TRUE(first.ok() && again.ok() && other.ok()) << first.status();
  EXPECT_EQ(first->names(), data.tasks);
  EXPECT_EQ(first->vectors().sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(at::equal(first->vectors(), again->vectors()));
  EXPECT_FALSE(at::allclose(first->vectors(), other->vectors()));
}

TEST(TaskEmbeddingTest, RandomRejectsMissingDimAndParamsOfAnotherMethod) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingRequest request;
  request.method = "random";
  EXPECT_EQ(ComputeTaskEmbeddings(request, InputFor(nullptr, data)).status().code(),
            absl::StatusCode::kInvalidArgument);
  request.context.dim = 3;
  request.params = Pack(FisherEmbeddingParams());
  const absl::Status status = ComputeTaskEmbeddings(request, InputFor(nullptr, data)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("taskmoe.RandomEmbeddingParams"), std::string::npos) << status;
}

TEST(TaskEmbeddingTest, PcaDimReducesAnyMethodsVectors) {
  TokenizedDataset data = TinyDataset();
  data.tasks.push_back("task_c");  // random needs no examples
  TaskEmbeddingRequest request;
  request.method = "random";
  request.context.dim = 4;
  request.pca_dim = 2;
  const absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, InputFor(nullptr, data));
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->vectors().sizes(), (std::vector<int64_t>{3, 2}));
  // Projections of centred data: every column sums to zero.
  EXPECT_TRUE(at::allclose(table->vectors().sum(0), at::zeros({2}), 1e-5, 1e-5));
  request.pca_dim = 4;  // more components than tasks
  EXPECT_EQ(ComputeTaskEmbeddings(request, InputFor(nullptr, data)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TaskEmbeddingTest, ModelMethodsNeedAModel) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingRequest request;
  request.method = "text_emb";
  EXPECT_EQ(ComputeTaskEmbeddings(request, InputFor(nullptr, data)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Params a method rejects before it runs (so no model is needed); the error names the message.
template <typename Params>
void ExpectRejected(const std::string& method, const Params& params, const std::string& name) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingRequest request;
  request.method = method;
  request.params = Pack(params);
  const absl::Status status = ComputeTaskEmbeddings(request, InputFor(nullptr, data)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << params.ShortDebugString();
  EXPECT_NE(status.message().find(name), std::string::npos) << status;
}

TEST(TaskEmbeddingTest, ModelMethodsRejectInvalidParams) {
  TextEmbeddingParams text;
  text.set_batch_size(0);
  ExpectRejected("text_emb", text, "TextEmbeddingParams.batch_size");

  FineTunedTextEmbeddingParams tuned;
  tuned.set_predict_batch_size(0);
  ExpectRejected("ft_text_emb", tuned, "FineTunedTextEmbeddingParams");
  tuned = FineTunedTextEmbeddingParams();
  tuned.set_max_grad_norm(0);
  ExpectRejected("ft_text_emb", tuned, "FineTunedTextEmbeddingParams");
  tuned = FineTunedTextEmbeddingParams();
  tuned.set_label_smoothing(1.0);
  ExpectRejected("ft_text_emb", tuned, "FineTunedTextEmbeddingParams");
  tuned = FineTunedTextEmbeddingParams();
  tuned.set_steps(-1);
  ExpectRejected("ft_text_emb", tuned, "FineTunedTextEmbeddingParams");

  FisherEmbeddingParams fisher;
  fisher.set_adapter_dim(0);
  ExpectRejected("fisher", fisher, "FisherEmbeddingParams");
  fisher = FisherEmbeddingParams();
  fisher.set_fisher_batch_size(0);
  ExpectRejected("fisher", fisher, "FisherEmbeddingParams");
  fisher = FisherEmbeddingParams();
  fisher.set_warmup_steps(-1);
  ExpectRejected("fisher", fisher, "FisherEmbeddingParams");
  fisher = FisherEmbeddingParams();
  fisher.set_learning_rate(0);
  ExpectRejected("fisher", fisher, "FisherEmbeddingParams");
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(TaskEmbeddingTest, SavedTableHasNumpysExactByteLayout) {
  const at::Tensor vectors = at::tensor({1.0f, -2.0f, 0.5f, 3.0f, 0.0f, -0.25f}).view({2, 3});
  absl::StatusOr<TaskTable> table = TaskTable::Create({"task_a", "task_b"}, vectors);
  ASSERT_TRUE(table.ok()) << table.status();
  const std::string dir = ::testing::TempDir();
  ASSERT_TRUE(table->Save(dir).ok());

  // .npy v1.0: magic, version 1.0, little-endian header length (118 = 0x76), a header padded
  // with spaces and ended by a newline so the data starts at byte 128 (numpy aligns it to 64),
  // then the float32 values in C order.
  const std::string bytes = ReadBytes(dir + "/task_vecs.npy");
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_EQ(dict.size(), 59u);
  const std::string header = dict + std::string(118 - 59 - 1, ' ') + "\n";
  std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + header;
  ASSERT_EQ(expected.size(), 128u);
  for (float value : {1.0f, -2.0f, 0.5f, 3.0f, 0.0f, -0.25f}) {
    expected.append(reinterpret_cast<const char*>(&value), sizeof(value));  // x86: little-endian
  }
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(ReadBytes(dir + "/id2task.json"), R"({"0":"task_a","1":"task_b"})");

  const absl::StatusOr<TaskTable> loaded = TaskTable::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->names(), table->names());
  EXPECT_TRUE(at::equal(loaded->vectors(), vectors));
}

}  // namespace
}  // namespace taskmoe
