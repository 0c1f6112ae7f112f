#include "moe/formats/npy.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <ATen/ATen.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/temporary_files.h"

namespace taskmoe {
namespace {

using ::testing::HasSubstr;

// A .npy file as numpy lays it out: magic, version, little-endian header length, header dict
// padded with spaces to a 64-byte boundary and ended by '\n', then the raw data.
std::string NpyBytes(const std::string& dict, const void* data, size_t data_bytes, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes = "\x93NUMPY";
  bytes.push_back(static_cast<char>(major));
  bytes.push_back('\0');
  const uint32_t length = header.size();
  bytes.append(reinterpret_cast<const char*>(&length), major == 1 ? 2 : 4);  // little-endian host
  bytes += header;
  bytes.append(static_cast<const char*>(data), data_bytes);
  return bytes;
}

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

TEST(NpyTest, SerializesExactlyAsNumpy) {
  const at::Tensor tensor = at::arange(6, at::kFloat).view({2, 3});
  const float values[] = {0, 1, 2, 3, 4, 5};
  const std::string expected =
      NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", values, sizeof(values));
  absl::StatusOr<std::string> bytes = SerializeNpy(tensor);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, expected);
  EXPECT_EQ((expected.size() - sizeof(values)) % 64, 0u);
}

TEST(NpyTest, OneDimensionalAndScalarShapesUseTupleSyntax) {
  const int64_t values[] = {5, -7};
  EXPECT_EQ(*SerializeNpy(at::tensor({int64_t{5}, int64_t{-7}})),
            NpyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", values, sizeof(values)));
  const double scalar = 3.5;
  EXPECT_EQ(*SerializeNpy(at::scalar_tensor(3.5, at::kDouble)),
            NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &scalar, sizeof(scalar)));
}

TEST(NpyTest, ParsesNumpyBytes) {
  const int32_t values[] = {1, -2, 3, -4};
  absl::StatusOr<at::Tensor> tensor = ParseNpy(
      NpyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", values, sizeof(values)), "x.npy");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_EQ(tensor->scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(*tensor, at::tensor({1, -2, 3, -4}, at::kInt).view({2, 2})));
}

TEST(NpyTest, FortranOrderIsTransposedBack) {
  // Column-major storage of [[0, 1, 2], [3, 4, 5]].
  const float values[] = {0, 3, 1, 4, 2, 5};
  absl::StatusOr<at::Tensor> tensor = ParseNpy(
      NpyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", values, sizeof(values)), "f.npy");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_TRUE(at::equal(*tensor, at::arange(6, at::kFloat).view({2, 3})));
}

TEST(NpyTest, ReadsVersionTwoHeaders) {
  const float values[] = {1.5f, 2.5f};
  absl::StatusOr<at::Tensor> tensor = ParseNpy(
      NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", values, sizeof(values), 2), "v2.npy");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_TRUE(at::equal(*tensor, at::tensor({1.5f, 2.5f})));
}

TEST(NpyTest, FileRoundTripKeepsDtypeShapeAndValues) {
  const at::Tensor tensors[] = {at::randn({3, 4, 5}), at::randn({7}, at::kDouble),
                                at::randint(-100, 100, {2, 3}, at::kInt), at::randint(-100, 100, {4}, at::kLong),
                                at::zeros({0, 4})};
  int index = 0;
  for (const at::Tensor& tensor : tensors) {
    const std::string path = TempPath("round_trip_" + std::to_string(index++) + ".npy");
    ASSERT_TRUE(WriteNpy(path, tensor).ok());
    absl::StatusOr<at::Tensor> read = ReadNpy(path);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->scalar_type(), tensor.scalar_type());
    EXPECT_EQ(read->sizes(), tensor.sizes());
    EXPECT_TRUE(at::equal(*read, tensor));
    EXPECT_TRUE(testing::TemporarySiblings(path).empty()) << "temporary file left behind";
  }
}

TEST(NpyTest, WritesNonContiguousTensorsInLogicalOrder) {
  const at::Tensor transposed = at::arange(6, at::kFloat).view({2, 3}).t();
  const std::string path = TempPath("transposed.npy");
  ASSERT_TRUE(WriteNpy(path, transposed).ok());
  EXPECT_TRUE(at::equal(*ReadNpy(path), transposed.contiguous()));
}

TEST(NpyTest, RejectsMalformedFiles) {
  const float values[] = {1, 2};
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";

  absl::Status status = ParseNpy("PK\x03\x04 not numpy", "a.npy").status();
  EXPECT_THAT(status.message(), HasSubstr("a.npy"));
  EXPECT_THAT(status.message(), HasSubstr("magic"));

  status = ParseNpy(NpyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", values, 4), "h.npy").status();
  EXPECT_THAT(status.message(), HasSubstr("'<f2' is not supported"));
  status = ParseNpy(NpyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", values, 8), "b.npy").status();
  EXPECT_THAT(status.message(), HasSubstr("'>f4' is not supported"));

  status = ParseNpy(NpyBytes(good_dict, values, 4), "short.npy").status();
  EXPECT_THAT(status.message(), HasSubstr("needs 8 data bytes, the file has 4"));

  status = ParseNpy(NpyBytes("{'descr': '<f4', 'shape': (2,), }", values, 8), "k.npy").status();
  EXPECT_THAT(status.message(), HasSubstr("'fortran_order'"));

  status = ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", values, 8), "s.npy").status();
  EXPECT_THAT(status.message(), HasSubstr("bad dimension 'x'"));

  // Found while writing the fuzzers (tests/fuzz): the element count overflowed int64 and wrapped.
  status = ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
                             values, 0),
                    "huge.npy")
               .status();
  EXPECT_THAT(status.message(), HasSubstr("needs more than 2^64 data bytes"));

  std::string future = NpyBytes(good_dict, values, 8);
  future[6] = 4;
  EXPECT_THAT(ParseNpy(future, "v4.npy").status().message(), HasSubstr("version 4.0 is not supported"));
}

TEST(NpyTest, MissingFileAndUnsupportedDtypeAreErrors) {
  const absl::Status missing = ReadNpy(TempPath("does_not_exist.npy")).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("does_not_exist.npy"));

  const absl::Status half = WriteNpy(TempPath("half.npy"), at::zeros({2}, at::kHalf));
  EXPECT_THAT(half.message(), HasSubstr("half.npy"));
  EXPECT_THAT(half.message(), HasSubstr("Half"));
  EXPECT_FALSE(WriteNpy(TempPath("no/such/dir/x.npy"), at::zeros({2})).ok());
}

}  // namespace
}  // namespace taskmoe
