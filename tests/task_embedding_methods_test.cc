// The model-based task-embedding methods against computations done here another way: pooling
// by hand with the model's own forward, the Fisher information from per-example autograd
// gradients of adapters built here, and the BART sublayer hook the adapters use.
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "moe/embedding/task_embedding.h"
#include "moe/model/loss.h"
#include "moe/model/moe_model.h"
#include "task_embeddings/fisher/fisher.pb.h"
#include "task_embeddings/ft_text_emb/ft_text_emb.pb.h"
#include "task_embeddings/text_emb/text_emb.pb.h"
#include "tests/bart_fixture.h"
#include "tests/task_embedding_fixture.h"

namespace taskmoe {
namespace {

using ::taskmoe::testing::InputFor;
using ::taskmoe::testing::LoadBartTiny;
using ::taskmoe::testing::Pack;
using ::taskmoe::testing::TinyDataset;

constexpr int64_t kPad = 1;
constexpr int64_t kDecoderStart = 2;

template <typename Params>
at::Tensor Embed(TaskEmbeddingModel& model, const TokenizedDataset& data, const std::string& method,
                 const Params& params) {
  TaskEmbeddingRequest request;
  request.method = method;
  request.params = Pack(params);
  absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, InputFor(&model, data));
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? table->vectors() : at::Tensor();
}

// A batch of `rows` right-padded with kPad to the longest: ids and attention mask [B, T].
std::pair<at::Tensor, at::Tensor> PaddedBatch(const std::vector<std::vector<int64_t>>& rows) {
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.size());
  std::vector<int64_t> ids, mask;
  for (const auto& row : rows) {
    for (size_t i = 0; i < width; ++i) {
      ids.push_back(i < row.size() ? row[i] : kPad);
      mask.push_back(i < row.size() ? 1 : 0);
    }
  }
  const int64_t batch = static_cast<int64_t>(rows.size());
  return {at::tensor(ids, at::kLong).view({batch, -1}), at::tensor(mask, at::kLong).view({batch, -1})};
}

std::vector<int64_t> InputOf(const TokenizedDataset& data, int index) {
  return data.examples[index].input_ids;
}

TEST(TextEmbeddingTest, DefaultAveragesDecoderStatesOfTheShiftedPaddedInputs) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  TextEmbeddingParams params;
  params.set_batch_size(2);
  const at::Tensor vectors = Embed(model, data, "text_emb", params);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, 32}));

  // Per example of a batch: the decoder's states for <decoder start> + the padded input without
  // its last column, every position of the batch's width averaged.
  at::NoGradGuard no_grad;
  auto batch_vectors = [&](const std::vector<int>& examples) {
    std::vector<std::vector<int64_t>> rows;
    for (int example : examples) rows.push_back(InputOf(data, example));
    const auto [ids, mask] = PaddedBatch(rows);
    std::vector<at::Tensor> result;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      std::vector<int64_t> shifted = {kDecoderStart};
      for (int64_t t = 0; t + 1 < ids.size(1); ++t) shifted.push_back(ids[b][t].item<int64_t>());
      const BartOutput out = model.model->Forward(ids[b].unsqueeze(0), mask[b].unsqueeze(0),
                                                  at::tensor(shifted, at::kLong).unsqueeze(0));
      result.push_back(out.decoder_last_hidden_state[0].mean(0));
    }
    return result;
  };
  // task_a: batches {0, 1} (width 5) and {2} (width 7); task_b: {3, 4} (width 6).
  const std::vector<at::Tensor> a01 = batch_vectors({0, 1});
  const std::vector<at::Tensor> a2 = batch_vectors({2});
  const std::vector<at::Tensor> b34 = batch_vectors({3, 4});
  EXPECT_TRUE(at::allclose(vectors[0], (a01[0] + a01[1] + a2[0]) / 3, 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(vectors[1], (b34[0] + b34[1]) / 2, 1e-4, 1e-5));
  // Padding counts: example 1 alone (no padding) gives another vector than in its batch.
  EXPECT_FALSE(at::allclose(batch_vectors({1})[0], a01[1], 1e-3, 1e-3));

  params.set_pooling(TextEmbeddingParams::ENCODER_MEAN);
  EXPECT_FALSE(at::allclose(Embed(model, data, "text_emb", params), vectors, 1e-2, 1e-2));
}

TEST(TextEmbeddingTest, EncoderMeanAveragesNonPadEncoderStates) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  TextEmbeddingParams params;
  params.set_pooling(TextEmbeddingParams::ENCODER_MEAN);
  params.set_batch_size(2);
  const at::Tensor vectors = Embed(model, data, "text_emb", params);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, 32}));
  at::NoGradGuard no_grad;
  for (int32_t task = 0; task < 2; ++task) {
    // Per example without batching or padding.
    at::Tensor sum = at::zeros({32});
    int64_t count = 0;
    for (const TokenizedExample& example : data.examples) {
      if (example.task_id != task) continue;
      const at::Tensor ids = at::tensor(example.input_ids, at::kLong).unsqueeze(0);
      sum += model.model->Encode(ids, at::ones_like(ids)).squeeze(0).mean(0);
      ++count;
    }
    EXPECT_TRUE(at::allclose(vectors[task], sum / count, 1e-4, 1e-5)) << task;
  }
  TaskEmbeddingRequest request;
  request.method = "text_emb";
  request.context.dim = 16;  // not d_model
  EXPECT_EQ(ComputeTaskEmbeddings(request, InputFor(&model, data)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TaskEmbeddingModel IdenticalExpertsOf(const TaskEmbeddingModel& dense) {
  MoeOptions options;
  options.experts = 2;
  options.init_eps = 0;  // experts are exact copies, so average routes reproduce the dense layer
  absl::StatusOr<MoeBart> moe = MoeBart::FromDense(dense.model, options);
  EXPECT_TRUE(moe.ok()) << moe.status();
  TaskEmbeddingModel routed;
  routed.model = moe->model();
  routed.model->eval();
  routed.routed = true;
  routed.shape = moe->shape();
  return routed;
}

TEST(TextEmbeddingTest, MoeModelWithIdenticalExpertsEmbedsLikeItsDenseModel) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel dense;
  dense.model = LoadBartTiny();
  TaskEmbeddingModel routed = IdenticalExpertsOf(dense);
  const TextEmbeddingParams params;
  EXPECT_TRUE(at::allclose(Embed(dense, data, "text_emb", params),
                           Embed(routed, data, "text_emb", params), 1e-4, 1e-5));
}

TEST(FineTunedTextEmbeddingTest, AvgAndBosPoolTheFirstExampleOfEachBatch) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  FineTunedTextEmbeddingParams params;
  params.set_steps(0);
  params.set_predict_batch_size(2);
  const at::Tensor avg = Embed(model, data, "ft_text_emb", params);
  params.set_pooling(FineTunedTextEmbeddingParams::BOS);
  const at::Tensor bos = Embed(model, data, "ft_text_emb", params);

  // The whole batch encoded; row 0's states [T, D].
  at::NoGradGuard no_grad;
  auto first_row = [&](const std::vector<int>& examples) {
    std::vector<std::vector<int64_t>> rows;
    for (int example : examples) rows.push_back(InputOf(data, example));
    const auto [ids, mask] = PaddedBatch(rows);
    return model.model->Encode(ids, mask)[0];
  };
  const at::Tensor a01 = first_row({0, 1});  // width 5, example 0 fills it
  const at::Tensor a2 = first_row({2});      // width 7
  const at::Tensor b34 = first_row({3, 4});  // width 6; example 3 has 4 tokens, then padding
  // Positions 1 .. T-2: example 3's </s> (3) and one pad (4) are included.
  EXPECT_TRUE(at::allclose(avg[0], (a01.slice(0, 1, 4).mean(0) + a2.slice(0, 1, 6).mean(0)) / 2,
                           1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(avg[1], b34.slice(0, 1, 5).mean(0), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(bos[0], (a01[0] + a2[0]) / 2, 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(bos[1], b34[0], 1e-4, 1e-5));

  // ENCODER_MEAN of the untrained model is text_emb's ENCODER_MEAN.
  params.set_pooling(FineTunedTextEmbeddingParams::ENCODER_MEAN);
  TextEmbeddingParams text;
  text.set_pooling(TextEmbeddingParams::ENCODER_MEAN);
  EXPECT_TRUE(at::allclose(Embed(model, data, "ft_text_emb", params),
                           Embed(model, data, "text_emb", text), 1e-5, 1e-6));
}

TEST(FineTunedTextEmbeddingTest, TrainsPerTaskAndRestoresTheModel) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  const at::Tensor embedding_before = model.model->model->shared->weight.clone();
  const TextEmbeddingParams text;
  const at::Tensor plain = Embed(model, data, "text_emb", text);
  FineTunedTextEmbeddingParams params;
  params.set_steps(0);
  const at::Tensor untrained = Embed(model, data, "ft_text_emb", params);
  params.set_steps(3);
  params.set_warmup_steps(0);
  params.set_learning_rate(1e-2);
  const at::Tensor tuned = Embed(model, data, "ft_text_emb", params);
  EXPECT_FALSE(at::allclose(untrained, tuned, 1e-3, 1e-3));
  EXPECT_TRUE(at::equal(model.model->model->shared->weight, embedding_before));
  EXPECT_TRUE(at::equal(plain, Embed(model, data, "text_emb", text)));  // restored model
}

// Bottleneck adapter tensors as the original initialises them (weights 1, biases 0).
struct AdapterTensors {
  at::Tensor down_weight, down_bias, up_weight, up_bias;
  AdapterTensors(int64_t d_model, int64_t dim)
      : down_weight(at::ones({dim, d_model}).requires_grad_()),
        down_bias(at::zeros({dim}).requires_grad_()),
        up_weight(at::ones({d_model, dim}).requires_grad_()),
        up_bias(at::zeros({d_model}).requires_grad_()) {}
  at::Tensor Apply(const at::Tensor& h) const {
    return h + at::linear(at::gelu(at::linear(h, down_weight, down_bias)), up_weight, up_bias);
  }
};

// Per example (batch of one, dropout off), the squared gradients of the summed label-smoothed
// loss with respect to adapter weights hooked into every layer here, averaged: the vector the
// method documents, computed without it.
at::Tensor FisherByHand(BartForConditionalGeneration& model, const TokenizedDataset& data,
                        int32_t task, int64_t adapter_dim) {
  const int64_t layers = 2;
  std::vector<std::vector<AdapterTensors>> encoder(layers), decoder(layers);
  std::vector<at::Tensor> weights;
  auto add = [&](std::vector<AdapterTensors>& layer, int count) {
    for (int i = 0; i < count; ++i) {
      layer.emplace_back(32, adapter_dim);
      weights.push_back(layer.back().down_weight);
      weights.push_back(layer.back().up_weight);
    }
  };
  for (auto& layer : encoder) add(layer, 2);  // self-attention, feed-forward
  for (auto& layer : decoder) add(layer, 3);  // self-attention, cross-attention, feed-forward
  for (int64_t i = 0; i < layers; ++i) {
    model->model->encoder->layers->ptr<BartEncoderLayerImpl>(i)->sublayer_hook =
        [&, i](Sublayer sublayer, const at::Tensor& x) {
          return encoder[i][sublayer == Sublayer::kSelfAttention ? 0 : 1].Apply(x);
        };
    model->model->decoder->layers->ptr<BartDecoderLayerImpl>(i)->sublayer_hook =
        [&, i](Sublayer sublayer, const at::Tensor& x) {
          return decoder[i][static_cast<int>(sublayer)].Apply(x);
        };
  }
  std::vector<at::Tensor> squared;
  for (const at::Tensor& weight : weights) squared.push_back(at::zeros_like(weight));
  int64_t count = 0;
  for (const TokenizedExample& example : data.examples) {
    if (example.task_id != task) continue;
    const at::Tensor ids = at::tensor(example.input_ids, at::kLong).unsqueeze(0);
    const std::vector<int64_t>& output = example.output_ids[0];
    std::vector<int64_t> shifted = {kDecoderStart};
    shifted.insert(shifted.end(), output.begin(), output.end() - 1);
    const at::Tensor logits =
        model->Forward(ids, at::ones_like(ids), at::tensor(shifted, at::kLong).unsqueeze(0)).logits;
    const at::Tensor labels = at::tensor(output, at::kLong).unsqueeze(0);
    const at::Tensor loss = LabelSmoothedNllLoss(logits, labels, 0.1, kPad).loss;
    const std::vector<at::Tensor> grads = torch::autograd::grad({loss}, weights);
    for (size_t i = 0; i < weights.size(); ++i) squared[i] += grads[i].square();
    ++count;
  }
  for (int64_t i = 0; i < layers; ++i) {
    model->model->encoder->layers->ptr<BartEncoderLayerImpl>(i)->sublayer_hook = nullptr;
    model->model->decoder->layers->ptr<BartDecoderLayerImpl>(i)->sublayer_hook = nullptr;
  }
  std::vector<at::Tensor> flat;
  for (const at::Tensor& sum : squared) flat.push_back(sum.flatten() / count);
  return at::cat(flat);
}

TEST(FisherEmbeddingTest, UntrainedAdaptersGiveThePerExampleSquaredGradients) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  FisherEmbeddingParams params;
  params.set_adapter_dim(2);
  params.set_steps(0);
  const at::Tensor vectors = Embed(model, data, "fisher", params);
  // Weights only: (2 encoder layers x 2 + 2 decoder layers x 3) adapters x (down + up) x 32 x 2.
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, 10 * 2 * 32 * 2}));
  for (int32_t task = 0; task < 2; ++task) {
    const at::Tensor expected = FisherByHand(model.model, data, task, 2);
    EXPECT_GT(expected.max().item<double>(), 0.0);
    const double scale = expected.abs().max().item<double>();
    EXPECT_TRUE(at::allclose(vectors[task], expected, 1e-3, 1e-6 * scale)) << task;
  }
}

TEST(FisherEmbeddingTest, TrainsOnlyTheAdaptersAndRemovesThem) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel model;
  model.model = LoadBartTiny();
  std::vector<at::Tensor> before;
  for (const at::Tensor& parameter : model.model->parameters()) before.push_back(parameter.clone());
  const at::Tensor ids = at::tensor(data.examples[0].input_ids, at::kLong).unsqueeze(0);
  auto logits = [&] {
    at::NoGradGuard no_grad;
    return model.model->Forward(ids, at::ones_like(ids), ids).logits;
  };
  const at::Tensor logits_before = logits();

  FisherEmbeddingParams params;
  params.set_adapter_dim(2);
  params.set_steps(0);
  const at::Tensor untrained = Embed(model, data, "fisher", params);
  params.set_steps(2);
  params.set_warmup_steps(0);
  params.set_learning_rate(1e-2);
  const at::Tensor trained = Embed(model, data, "fisher", params);
  EXPECT_TRUE(trained.isfinite().all().item<bool>());
  EXPECT_GE(trained.min().item<float>(), 0.0f);
  EXPECT_FALSE(at::allclose(trained, untrained, 1e-3, 1e-12));
  params.set_clip_whole_model(false);
  EXPECT_TRUE(Embed(model, data, "fisher", params).isfinite().all().item<bool>());
  params.set_adapter_init(FisherEmbeddingParams::ZERO_UP);
  EXPECT_GT(Embed(model, data, "fisher", params).sum().item<float>(), 0.0f);

  // The model is as before: weights, trainability, and no adapter left in its layers.
  const std::vector<at::Tensor> after = model.model->parameters();
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(at::equal(after[i], before[i])) << i;
    EXPECT_TRUE(after[i].requires_grad());
  }
  EXPECT_TRUE(at::equal(logits(), logits_before));

  TaskEmbeddingRequest request;  // PCA across the two tasks
  request.method = "fisher";
  request.params = Pack(params);
  request.context.dim = 1;
  const absl::StatusOr<TaskTable> reduced = ComputeTaskEmbeddings(request, InputFor(&model, data));
  ASSERT_TRUE(reduced.ok()) << reduced.status();
  EXPECT_EQ(reduced->vectors().sizes(), (std::vector<int64_t>{2, 1}));
}

TEST(FisherEmbeddingTest, MoeModelWithIdenticalExpertsGivesTheDenseFisher) {
  const TokenizedDataset data = TinyDataset();
  TaskEmbeddingModel dense;
  dense.model = LoadBartTiny();
  TaskEmbeddingModel routed = IdenticalExpertsOf(dense);
  FisherEmbeddingParams params;
  params.set_adapter_dim(2);
  params.set_steps(0);
  const at::Tensor expected = Embed(dense, data, "fisher", params);
  const double scale = expected.abs().max().item<double>();
  EXPECT_TRUE(at::allclose(Embed(routed, data, "fisher", params), expected, 1e-3, 1e-6 * scale));
}

TEST(SublayerHookTest, ReplacesEachSublayerOutputBeforeItsResidualSum) {
  BartForConditionalGeneration model = LoadBartTiny();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({1, 4, 32});
  std::vector<Sublayer> seen;
  auto zero = [&seen](Sublayer zeroed) {
    return [&seen, zeroed](Sublayer sublayer, const at::Tensor& output) {
      seen.push_back(sublayer);
      return sublayer == zeroed ? at::zeros_like(output) : output;
    };
  };
  auto ffn = [](const at::Tensor& h, torch::nn::Linear fc1, torch::nn::Linear fc2) {
    return fc2->forward(at::gelu(fc1->forward(h)));
  };

  BartEncoderLayerImpl& encoder = *model->model->encoder->layers->ptr<BartEncoderLayerImpl>(0);
  encoder.sublayer_hook = zero(Sublayer::kSelfAttention);
  const at::Tensor encoded = encoder.Forward(x, at::Tensor(), at::Tensor());
  encoder.sublayer_hook = nullptr;
  const at::Tensor h = encoder.self_attn_layer_norm->forward(x);  // x + zero
  EXPECT_TRUE(at::allclose(
      encoded, encoder.final_layer_norm->forward(h + ffn(h, encoder.fc1, encoder.fc2)), 1e-5, 1e-6));
  EXPECT_EQ(seen, (std::vector<Sublayer>{Sublayer::kSelfAttention, Sublayer::kFeedForward}));

  seen.clear();
  BartDecoderLayerImpl& decoder = *model->model->decoder->layers->ptr<BartDecoderLayerImpl>(0);
  decoder.sublayer_hook = zero(Sublayer::kCrossAttention);
  const at::Tensor decoded = decoder.Forward(x, at::Tensor(), x, at::Tensor(), at::Tensor(), nullptr);
  decoder.sublayer_hook = nullptr;
  const at::Tensor attended = decoder.self_attn_layer_norm->forward(
      x + decoder.self_attn->Forward(x, at::Tensor(), at::Tensor(), nullptr));
  const at::Tensor crossed = decoder.encoder_attn_layer_norm->forward(attended);  // + zero
  EXPECT_TRUE(at::allclose(
      decoded, decoder.final_layer_norm->forward(crossed + ffn(crossed, decoder.fc1, decoder.fc2)),
      1e-5, 1e-6));
  EXPECT_EQ(seen, (std::vector<Sublayer>{Sublayer::kSelfAttention, Sublayer::kCrossAttention,
                                         Sublayer::kFeedForward}));
}

}  // namespace
}  // namespace taskmoe
