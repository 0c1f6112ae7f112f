#include "moe/embedding/task_embedding.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "moe/model/moe_model.h"
#include "task_embeddings/fisher/fisher.pb.h"
#include "task_embeddings/ft_text_emb/ft_text_emb.pb.h"
#include "task_embeddings/random/random.pb.h"
#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

using ::taskmoe::testing::LoadBartTiny;

// Two tasks of hand-made token ids (bart_tiny's vocabulary has 96 ids, pad 1) with inputs of
// different lengths, so batches of two hold padding.
TokenizedDataset TinyDataset() {
  TokenizedDataset data;
  data.tasks = {"task_a", "task_b"};
  auto add = [&](int32_t task, std::vector<int64_t> input, std::vector<int64_t> output) {
    TokenizedExample example;
    example.task_id = task;
    example.input_ids = std::move(input);
    example.output_ids = {std::move(output)};
    data.examples.push_back(std::move(example));
  };
  add(0, {0, 10, 11, 12, 2}, {0, 40, 2});
  add(0, {0, 13, 2}, {0, 41, 42, 2});
  add(0, {0, 14, 15, 16, 17, 18, 2}, {0, 43, 2});
  add(1, {0, 50, 51, 2}, {0, 60, 2});
  add(1, {0, 52, 53, 54, 55, 2}, {0, 61, 62, 2});
  return data;
}

TaskEmbeddingInput InputFor(TaskEmbeddingModel* model, const TokenizedDataset& data) {
  TaskEmbeddingInput input;
  input.model = model;
  input.data = &data;
  return input;
}

template <typename Params>
google::protobuf::Any Pack(const Params& params) {
  google::protobuf::Any any;
  any.PackFrom(params);
  return any;
}

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

// Per example, without batching or padding: the mean of the encoder's states over its tokens.
at::Tensor DirectTextEmbedding(BartForConditionalGeneration& model, const TokenizedDataset& data,
                               int32_t task) {
  at::NoGradGuard no_grad;
  at::Tensor sum = at::zeros({model->config().d_model});
  int64_t count = 0;
  for (const TokenizedExample& example : data.examples) {
    if (example.task_id != task) continue;
    const at::Tensor ids = at::tensor(example.input_ids, at::kLong).unsqueeze(0);
    sum += model->Encode(ids, at::ones_like(ids)).squeeze(0).mean(0);
    ++count;
  }
  return sum / count;
}

TEST(TaskEmbeddingTest, TextEmbeddingIsTheMeanOfMeanPooledEncoderStates) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  TaskEmbeddingRequest request;
  request.method = "text_emb";
  const absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, InputFor(&model, data));
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->vectors().sizes(), (std::vector<int64_t>{2, 32}));
  for (int32_t task = 0; task < 2; ++task) {
    EXPECT_TRUE(at::allclose(table->vectors()[task], DirectTextEmbedding(model.model, data, task),
                             1e-4, 1e-5))
        << task;
  }
  request.context.dim = 16;  // not d_model
  EXPECT_EQ(ComputeTaskEmbeddings(request, InputFor(&model, data)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TaskEmbeddingTest, MoeModelWithIdenticalExpertsEmbedsLikeItsDenseModel) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel dense;
  dense.model = LoadBartTiny();
  MoeOptions options;
  options.experts = 2;
  options.init_eps = 0;  // experts are exact copies, so average routes reproduce the dense layer
  absl::StatusOr<MoeBart> moe = MoeBart::FromDense(dense.model, options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  TaskEmbeddingModel routed;
  routed.model = moe->model();
  routed.routed = true;
  routed.shape = moe->shape();
  TaskEmbeddingRequest request;
  request.method = "text_emb";
  const absl::StatusOr<TaskTable> from_dense = ComputeTaskEmbeddings(request, InputFor(&dense, data));
  const absl::StatusOr<TaskTable> from_moe = ComputeTaskEmbeddings(request, InputFor(&routed, data));
  ASSERT_TRUE(from_dense.ok() && from_moe.ok()) << from_moe.status();
  EXPECT_TRUE(at::allclose(from_dense->vectors(), from_moe->vectors(), 1e-4, 1e-5));
}

TEST(TaskEmbeddingTest, FineTunedTextEmbeddingTrainsPerTaskAndRestoresTheModel) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  const at::Tensor embedding_before = model.model->model->shared->weight.clone();
  TaskEmbeddingRequest text;
  text.method = "text_emb";
  const absl::StatusOr<TaskTable> plain = ComputeTaskEmbeddings(text, InputFor(&model, data));

  FineTunedTextEmbeddingParams params;
  params.set_steps(0);
  TaskEmbeddingRequest request;
  request.method = "ft_text_emb";
  request.params = Pack(params);
  const absl::StatusOr<TaskTable> untrained = ComputeTaskEmbeddings(request, InputFor(&model, data));
  params.set_steps(3);
  params.set_learning_rate(1e-2);
  request.params = Pack(params);
  const absl::StatusOr<TaskTable> tuned = ComputeTaskEmbeddings(request, InputFor(&model, data));
  ASSERT_TRUE(plain.ok() && untrained.ok() && tuned.ok()) << tuned.status();
  EXPECT_TRUE(at::allclose(plain->vectors(), untrained->vectors(), 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(plain->vectors(), tuned->vectors(), 1e-3, 1e-3));
  EXPECT_TRUE(at::equal(model.model->model->shared->weight, embedding_before));
  // The restored model embeds as before.
  const absl::StatusOr<TaskTable> after = ComputeTaskEmbeddings(text, InputFor(&model, data));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(at::equal(plain->vectors(), after->vectors()));
}

TEST(TaskEmbeddingTest, FisherIsNonNegativeWithOneValuePerAdapterWeight) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  FisherEmbeddingParams params;
  params.set_adapter_dim(4);
  params.set_steps(2);
  TaskEmbeddingRequest request;
  request.method = "fisher";
  request.params = Pack(params);
  const absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, InputFor(&model, data));
  ASSERT_TRUE(table.ok()) << table.status();
  // Two adapters (encoder, decoder), each down [4, 32] + [4] and up [32, 4] + [32].
  const int64_t per_adapter = 4 * 32 + 4 + 32 * 4 + 32;
  EXPECT_EQ(table->vectors().sizes(), (std::vector<int64_t>{2, 2 * per_adapter}));
  EXPECT_TRUE(table->vectors().isfinite().all().item<bool>());
  EXPECT_GE(table->vectors().min().item<float>(), 0.0f);
  EXPECT_GT(table->vectors().sum().item<float>(), 0.0f);
  // The frozen model's parameters train again afterwards.
  for (const at::Tensor& parameter : model.model->parameters()) EXPECT_TRUE(parameter.requires_grad());

  request.context.dim = 1;  // PCA across the two tasks
  const absl::StatusOr<TaskTable> reduced = ComputeTaskEmbeddings(request, InputFor(&model, data));
  ASSERT_TRUE(reduced.ok()) << reduced.status();
  EXPECT_EQ(reduced->vectors().sizes(), (std::vector<int64_t>{2, 1}));
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
