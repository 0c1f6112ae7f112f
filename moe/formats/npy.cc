#include "moe/formats/npy.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLength = 6;
// numpy aligns the start of the data to 64 bytes.
constexpr size_t kAlignment = 64;

struct Descr {
  const char* text;
  at::ScalarType dtype;
};
constexpr Descr kDescrs[] = {{"<f4", at::kFloat}, {"<f8", at::kDouble}, {"<i4", at::kInt},
                             {"<i8", at::kLong}};

absl::Status Malformed(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid .npy file: ", what));
}

// The value text of `key` in the header dict, e.g. "'<f4'" or "(2, 3)" or "False".
absl::StatusOr<std::string> DictValue(absl::string_view header, absl::string_view key,
                                      absl::string_view source) {
  const std::string quoted = absl::StrCat("'", key, "'");
  const size_t at = header.find(quoted);
  if (at == absl::string_view::npos) {
    return Malformed(source, absl::StrCat("header has no ", quoted, " entry: ", header));
  }
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(header.substr(at + quoted.size()));
  if (!absl::ConsumePrefix(&rest, ":")) return Malformed(source, absl::StrCat("no ':' after ", quoted));
  rest = absl::StripLeadingAsciiWhitespace(rest);
  size_t end;
  if (absl::StartsWith(rest, "(")) {
    end = rest.find(')');
    if (end == absl::string_view::npos) return Malformed(source, "unterminated shape tuple");
    ++end;
  } else if (absl::StartsWith(rest, "'")) {
    end = rest.find('\'', 1);
    if (end == absl::string_view::npos) return Malformed(source, "unterminated string");
    ++end;
  } else {
    end = rest.find_first_of(",}");
    if (end == absl::string_view::npos) return Malformed(source, "unterminated value");
  }
  return std::string(absl::StripTrailingAsciiWhitespace(rest.substr(0, end)));
}

absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view text, absl::string_view source) {
  absl::string_view inner = text;
  if (!absl::ConsumePrefix(&inner, "(") || !absl::ConsumeSuffix(&inner, ")")) {
    return Malformed(source, absl::StrCat("shape is not a tuple: ", text));
  }
  std::vector<int64_t> shape;
  for (absl::string_view item : absl::StrSplit(inner, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;  // "(3,)" and "()"
    int64_t size;
    if (!absl::SimpleAtoi(item, &size) || size < 0) {
      return Malformed(source, absl::StrCat("bad dimension '", item, "' in shape ", text));
    }
    shape.push_back(size);
  }
  return shape;
}

}  // namespace

absl::StatusOr<at::Tensor> ParseNpy(absl::string_view bytes, absl::string_view source) {
  if (bytes.size() < kMagicLength + 4 || bytes.substr(0, kMagicLength) != kMagic) {
    return Malformed(source, "missing the \\x93NUMPY magic");
  }
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_length;
  size_t header_start;
  if (major == 1) {
    header_length = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2) {
    if (bytes.size() < 12) return Malformed(source, "truncated v2.0 header");
    header_length = 0;
    for (int i = 3; i >= 0; --i) header_length = (header_length << 8) | static_cast<uint8_t>(bytes[8 + i]);
    header_start = 12;
  } else {
    return Malformed(source, absl::StrCat("format version ", major, ".", static_cast<int>(bytes[7]),
                                          " is not supported (1.0 and 2.0 are)"));
  }
  if (bytes.size() < header_start + header_length) return Malformed(source, "truncated header");
  const absl::string_view header =
      absl::StripAsciiWhitespace(bytes.substr(header_start, header_length));
  if (!absl::StartsWith(header, "{") || !absl::EndsWith(header, "}")) {
    return Malformed(source, absl::StrCat("header is not a dict: ", header));
  }

  TASKMOE_ASSIGN_OR_RETURN(const std::string descr, DictValue(header, "descr", source));
  TASKMOE_ASSIGN_OR_RETURN(const std::string fortran, DictValue(header, "fortran_order", source));
  TASKMOE_ASSIGN_OR_RETURN(const std::string shape_text, DictValue(header, "shape", source));

  const Descr* found = nullptr;
  for (const Descr& d : kDescrs) {
    if (descr == absl::StrCat("'", d.text, "'")) found = &d;
  }
  if (found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": dtype ", descr, " is not supported (expected '<f4', '<f8', '<i4' or '<i8')"));
  }
  if (fortran != "False" && fortran != "True") {
    return Malformed(source, absl::StrCat("fortran_order is ", fortran));
  }
  const bool fortran_order = fortran == "True";
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<int64_t> shape, ParseShape(shape_text, source));

  // Checked products: a shape such as (2**62, 4) would otherwise wrap to a small byte count that
  // matches the file, and LibTorch would be asked for the unwrapped shape.
  uint64_t numel = 1;
  bool overflow = false;
  for (int64_t size : shape) {
    overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(size), &numel);
  }
  uint64_t data_bytes = 0;
  overflow |= __builtin_mul_overflow(numel, at::elementSize(found->dtype), &data_bytes);
  const size_t available = bytes.size() - header_start - header_length;
  if (overflow) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": shape (", absl::StrJoin(shape, ", "), ") of ", found->text,
        " needs more than 2^64 data bytes, the file has ", available));
  }
  if (available != data_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": shape (", absl::StrJoin(shape, ", "), ") of ", found->text, " needs ",
        data_bytes, " data bytes, the file has ", available));
  }
  // Fortran order stores the transpose of the C layout: read reversed, then permute back.
  std::vector<int64_t> stored_shape = shape;
  if (fortran_order) std::reverse(stored_shape.begin(), stored_shape.end());
  at::Tensor tensor = at::empty(stored_shape, at::TensorOptions().dtype(found->dtype));
  if (data_bytes > 0) std::memcpy(tensor.data_ptr(), bytes.data() + header_start + header_length, data_bytes);
  if (fortran_order && tensor.dim() > 1) {
    std::vector<int64_t> reversed(tensor.dim());
    for (int64_t i = 0; i < tensor.dim(); ++i) reversed[i] = tensor.dim() - 1 - i;
    tensor = tensor.permute(reversed).contiguous();
  }
  return tensor;
}

absl::StatusOr<at::Tensor> ReadNpy(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path));
  return ParseNpy(bytes, path);
}

absl::StatusOr<std::string> SerializeNpy(const at::Tensor& tensor) {
  if (!tensor.defined()) return absl::InvalidArgumentError("cannot write an undefined tensor to .npy");
  const Descr* found = nullptr;
  for (const Descr& d : kDescrs) {
    if (d.dtype == tensor.scalar_type()) found = &d;
  }
  if (found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write dtype ",
                                                   c10::toString(tensor.scalar_type()),
                                                   " to .npy (float32, float64, int32, int64 are supported)"));
  }
  std::string shape = absl::StrJoin(tensor.sizes(), ", ");
  if (tensor.dim() == 1) shape += ",";
  std::string header = absl::StrCat("{'descr': '", found->text, "', 'fortran_order': False, 'shape': (",
                                    shape, "), }");
  const size_t unpadded = kMagicLength + 4 + header.size() + 1;  // + trailing newline
  header.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  header.push_back('\n');
  if (header.size() > 0xFFFF) return absl::InvalidArgumentError("tensor has too many dimensions for .npy v1.0");

  const at::Tensor data = tensor.detach().to(at::kCPU).contiguous();
  std::string bytes(kMagic, kMagicLength);
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.push_back(static_cast<char>(header.size() & 0xFF));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  bytes.append(static_cast<const char*>(data.data_ptr()), data.numel() * data.element_size());
  return bytes;
}

absl::Status WriteNpy(const std::string& path, const at::Tensor& tensor) {
  absl::StatusOr<std::string> bytes = SerializeNpy(tensor);
  if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", bytes.status().message()));
  return WriteFileAtomically(path, *bytes);
}

}  // namespace taskmoe
