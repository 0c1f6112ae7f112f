#include "moe/formats/safetensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/shared_data.h"

namespace taskmoe {
namespace {

// A safetensors file from a literal header and data section.
std::string FileBytes(const std::string& header, const std::string& data) {
  std::string out;
  const uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  return out + header + data;
}

TEST(Safetensors, ReadsFixtureWithHuggingFaceLayout) {
  absl::StatusOr<TensorMap> tensors =
      ReadSafetensors(testing::SharedPath("fixtures/bart_tiny/case.safetensors"));
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  const at::Tensor& input_ids = tensors->at("input_ids");
  EXPECT_EQ(input_ids.scalar_type(), at::kLong);
  EXPECT_EQ(input_ids.sizes(), at::IntArrayRef({3, 10}));
  // Every source starts with bos 0; the third has length 4 and is padded with 1.
  EXPECT_EQ(input_ids.select(1, 0).sum().item<int64_t>(), 0);
  EXPECT_EQ(input_ids[2][4].item<int64_t>(), 1);
  EXPECT_EQ(tensors->at("attention_mask").sum().item<int64_t>(), 7 + 10 + 4);
  EXPECT_EQ(tensors->at("greedy_max_length").dim(), 0);
  EXPECT_EQ(tensors->at("greedy_max_length").item<int64_t>(), 12);
  EXPECT_FLOAT_EQ(tensors->at("label_smoothing_epsilon").item<float>(), 0.1f);
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TensorMap tensors;
  tensors["f64"] = at::randn({2, 3}, at::kDouble);
  tensors["f32"] = at::randn({4});
  tensors["f16"] = at::randn({3, 1}).to(at::kHalf);
  tensors["bf16"] = at::randn({5}).to(at::kBFloat16);
  tensors["i64"] = at::arange(-3, 3, at::kLong);
  tensors["i32"] = at::arange(7, at::kInt);
  tensors["u8"] = at::arange(200, 205, at::kLong).to(at::kByte);
  tensors["bool"] = at::arange(3, at::kLong).remainder(2).to(at::kBool);
  tensors["scalar"] = at::scalar_tensor(2.5);
  tensors["empty"] = at::zeros({0, 4});
  tensors["strided"] = at::arange(12, at::kFloat).view({3, 4}).t();
  const std::string path = ::testing::TempDir() + "/round_trip.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  absl::StatusOr<TensorMap> back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    SCOPED_TRACE(name);
    const at::Tensor& read = back->at(name);
    EXPECT_EQ(read.scalar_type(), tensor.scalar_type());
    EXPECT_EQ(read.sizes(), tensor.sizes());
    EXPECT_TRUE(at::equal(read, tensor));
  }
}

TEST(Safetensors, WritesAlignedSpacePaddedHeaderWithFormatMetadata) {
  TensorMap tensors;
  tensors["a"] = at::ones({3}, at::kHalf);
  tensors["b"] = at::ones({1}, at::kLong);
  absl::StatusOr<std::string> bytes = SerializeSafetensors(tensors);
  ASSERT_TRUE(bytes.ok());
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>((*bytes)[i]);
  EXPECT_EQ(header_size % 8, 0u);
  const std::string header = bytes->substr(8, header_size);
  EXPECT_NE(header.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos);
  EXPECT_EQ(header.back(), ' ');
  // The 8-byte tensor comes first so that every tensor is aligned to its element size.
  EXPECT_NE(header.find("\"b\":{\"data_offsets\":[0,8]"), std::string::npos) << header;
  EXPECT_EQ(bytes->size(), 8 + header_size + 8 + 3 * 2);
}

TEST(Safetensors, RejectsTruncatedFile) {
  const std::string good =
      FileBytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ASSERT_TRUE(ParseSafetensors(good, "good").ok());
  absl::StatusOr<TensorMap> result = ParseSafetensors(good.substr(0, good.size() - 3), "cut.st");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("cut.st"), std::string::npos);
  EXPECT_NE(result.status().message().find("'x'"), std::string::npos);
  EXPECT_FALSE(ParseSafetensors(good.substr(0, 5), "tiny").ok());
}

TEST(Safetensors, ReadingTruncatedFileFromDiskNamesFileAndTensor) {
  TensorMap tensors;
  tensors["weight"] = at::ones({4, 4});
  const std::string path = ::testing::TempDir() + "/truncated.safetensors";
  absl::StatusOr<std::string> bytes = SerializeSafetensors(tensors);
  ASSERT_TRUE(bytes.ok());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes->data(), bytes->size() - 1);
  }
  absl::StatusOr<TensorMap> result = ReadSafetensors(path);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find(path), std::string::npos);
  EXPECT_NE(result.status().message().find("'weight'"), std::string::npos);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes->data(), 5);
  }
  EXPECT_FALSE(ReadSafetensors(path).ok());
}

TEST(Safetensors, RejectsHeaderLongerThanFile) {
  std::string bytes = FileBytes(R"({"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                                std::string(4, '\0'));
  bytes[1] = 0x7f;  // header length += 0x7f00
  absl::StatusOr<TensorMap> result = ParseSafetensors(bytes, "long.st");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("header length"), std::string::npos);
}

TEST(Safetensors, RejectsOverlappingOffsets) {
  absl::StatusOr<TensorMap> result = ParseSafetensors(
      FileBytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, '\0')),
      "overlap.st");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("overlap"), std::string::npos);
  EXPECT_NE(result.status().message().find("'a'"), std::string::npos);
  EXPECT_NE(result.status().message().find("'b'"), std::string::npos);
}

TEST(Safetensors, EmptyTensorsOverlapNothing) {
  // As Hugging Face writes them: an empty tensor at the offset where the next one starts.
  absl::StatusOr<TensorMap> result = ParseSafetensors(
      FileBytes(R"({"empty":{"dtype":"I64","shape":[1,0],"data_offsets":[0,0]},)"
                R"("ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                std::string("\x02\0\0\0\0\0\0\0", 8)),
      "empty.st");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->at("empty").sizes(), at::IntArrayRef({1, 0}));
  EXPECT_EQ(result->at("ids").item<int64_t>(), 2);
}

TEST(Safetensors, RejectsWrongByteSize) {
  absl::StatusOr<TensorMap> result = ParseSafetensors(
      FileBytes(R"({"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
      "size.st");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("'w'"), std::string::npos);
  EXPECT_NE(result.status().message().find("needs 6"), std::string::npos);
}

TEST(Safetensors, RejectsBadJsonAndUnknownDtype) {
  EXPECT_FALSE(ParseSafetensors(FileBytes("{not json", ""), "json.st").ok());
  absl::StatusOr<TensorMap> result = ParseSafetensors(
      FileBytes(R"({"c":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')),
      "dtype.st");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("C64"), std::string::npos);
  EXPECT_FALSE(ParseSafetensors(
                   FileBytes(R"({"n":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""),
                   "negative.st")
                   .ok());
  // Found while writing the fuzzers (tests/fuzz): 2^64 - 1 became the dimension -1 and LibTorch threw.
  result = ParseSafetensors(
      FileBytes(R"({"z":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}})",
                ""),
      "huge.st");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("[0, 2^63)"), std::string::npos);
}

TEST(Safetensors, MissingFileIsNotFound) {
  EXPECT_EQ(ReadSafetensors("/nonexistent/x.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace taskmoe
