#include "moe/formats/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

using nlohmann::json;

struct DtypeName {
  const char* name;
  at::ScalarType type;
};

constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},
};

bool DtypeFromName(const std::string& name, at::ScalarType* type) {
  for (const DtypeName& d : kDtypes) {
    if (name == d.name) {
      *type = d.type;
      return true;
    }
  }
  return false;
}

const char* NameOfDtype(at::ScalarType type) {
  for (const DtypeName& d : kDtypes) {
    if (type == d.type) return d.name;
  }
  return nullptr;
}

std::string KnownDtypes() {
  std::vector<std::string> names;
  for (const DtypeName& d : kDtypes) names.push_back(d.name);
  return absl::StrJoin(names, ", ");
}

struct Entry {
  std::string name;
  at::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

absl::Status EntryError(const std::string& source, const std::string& name,
                        const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": tensor '", name, "': ", what));
}

absl::StatusOr<Entry> ParseEntry(const std::string& source, const std::string& name,
                                 const json& value, uint64_t data_size) {
  if (!value.is_object()) return EntryError(source, name, "header entry is not a JSON object");
  Entry entry;
  entry.name = name;
  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) {
    return EntryError(source, name, "missing string field 'dtype'");
  }
  if (!DtypeFromName(dtype->get<std::string>(), &entry.type)) {
    return EntryError(source, name,
                      absl::StrCat("unsupported dtype '", dtype->get<std::string>(),
                                   "' (supported: ", KnownDtypes(), ")"));
  }
  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) {
    return EntryError(source, name, "missing array field 'shape'");
  }
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : *shape) {
    // Dimensions are int64 in LibTorch: 2^64 - 1 would become -1 (and a zero elsewhere in the
    // shape keeps the byte count at 0, so the size checks below pass).
    if (!dim.is_number_unsigned() ||
        dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return EntryError(source, name,
                        absl::StrCat("shape ", shape->dump(),
                                     " has an entry that is not an integer in [0, 2^63)"));
    }
    entry.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
    overflow |= __builtin_mul_overflow(numel, dim.get<uint64_t>(), &numel);
  }
  if (overflow || numel > data_size) {
    return EntryError(source, name, absl::StrCat("shape ", shape->dump(),
                                                 " is larger than the data section (", data_size,
                                                 " bytes)"));
  }
  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    return EntryError(source, name, "missing field 'data_offsets' = [begin, end]");
  }
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size) {
    return EntryError(source, name,
                      absl::StrCat("data_offsets [", entry.begin, ", ", entry.end,
                                   "] are not a range inside the data section of ", data_size,
                                   " bytes (file truncated?)"));
  }
  const uint64_t expected = numel * at::elementSize(entry.type);
  if (entry.end - entry.begin != expected) {
    return EntryError(source, name,
                      absl::StrCat("holds ", entry.end - entry.begin, " bytes but dtype ",
                                   dtype->get<std::string>(), " with shape ", shape->dump(),
                                   " needs ", expected));
  }
  return entry;
}

// The header length stored in the first 8 bytes (`prefix`, fewer if the file is shorter),
// checked against the file size.
absl::StatusOr<uint64_t> HeaderSize(std::string_view prefix, uint64_t file_size,
                                    const std::string& source) {
  if (file_size < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", file_size,
                     " bytes is too short for a safetensors file (8-byte header length)"));
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = (header_size << 8) | static_cast<unsigned char>(prefix[i]);
  }
  if (header_size > file_size - 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": header length ", header_size, " exceeds the ", file_size - 8,
                     " bytes that follow it (truncated or not safetensors)"));
  }
  return header_size;
}

// The validated tensor entries of a JSON header whose data section has `data_size` bytes.
absl::StatusOr<std::vector<Entry>> ParseEntries(std::string_view header_text, uint64_t data_size,
                                                const std::string& source) {
  json header = json::parse(header_text.begin(), header_text.end(), nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": header is not a JSON object"));
  }
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    TASKMOE_ASSIGN_OR_RETURN(Entry entry, ParseEntry(source, it.key(), it.value(), data_size));
    entries.push_back(std::move(entry));
  }
  std::vector<const Entry*> by_offset;  // empty tensors occupy no bytes, so overlap none
  for (const Entry& e : entries) {
    if (e.end > e.begin) by_offset.push_back(&e);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& prev = *by_offset[i - 1];
    const Entry& cur = *by_offset[i];
    if (cur.begin < prev.end) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": tensors '", prev.name, "' [", prev.begin, ", ", prev.end, ") and '",
          cur.name, "' [", cur.begin, ", ", cur.end, ") overlap"));
    }
  }
  return entries;
}

}  // namespace

absl::StatusOr<TensorMap> ParseSafetensors(std::string_view bytes, const std::string& source_name) {
  TASKMOE_ASSIGN_OR_RETURN(const uint64_t header_size,
                           HeaderSize(bytes, bytes.size(), source_name));
  const std::string_view data = bytes.substr(8 + header_size);
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Entry> entries,
                           ParseEntries(bytes.substr(8, header_size), data.size(), source_name));
  TensorMap tensors;
  for (const Entry& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data.data() + e.begin, e.end - e.begin);
    tensors.emplace(e.name, std::move(t));
  }
  return tensors;
}

absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path) {
  // Streams each tensor straight into its storage: no copy of the whole file in memory.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open for reading"));
  const std::streamoff end = in.tellg();
  if (end < 0) return absl::InvalidArgumentError(absl::StrCat(path, ": not a readable file"));
  const uint64_t file_size = static_cast<uint64_t>(end);
  in.seekg(0);
  char prefix[8] = {0};
  in.read(prefix, std::min<uint64_t>(8, file_size));
  TASKMOE_ASSIGN_OR_RETURN(const uint64_t header_size,
                           HeaderSize(std::string_view(prefix, 8), file_size, path));
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), header_size);
  const uint64_t data_start = 8 + header_size;
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Entry> entries,
                           ParseEntries(header_text, file_size - data_start, path));
  TensorMap tensors;
  for (const Entry& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.type));
    in.seekg(data_start + e.begin);
    in.read(static_cast<char*>(t.data_ptr()), e.end - e.begin);
    if (!in) return absl::DataLossError(absl::StrCat(path, ": read error in tensor '", e.name, "'"));
    tensors.emplace(e.name, std::move(t));
  }
  return tensors;
}

absl::StatusOr<std::string> SerializeSafetensors(const TensorMap& tensors) {
  std::vector<std::pair<std::string, at::Tensor>> ordered;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") {
      return absl::InvalidArgumentError("'__metadata__' is reserved and cannot name a tensor");
    }
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is undefined"));
    }
    if (NameOfDtype(tensor.scalar_type()) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' has dtype ", c10::toString(tensor.scalar_type()),
                       ", which safetensors here does not support (", KnownDtypes(), ")"));
    }
    ordered.emplace_back(name, tensor.detach().to(at::kCPU).contiguous());
  }
  // Larger elements first keeps every tensor aligned to its element size.
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.second.element_size() > b.second.element_size();
  });
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& [name, tensor] : ordered) {
    const uint64_t size = tensor.numel() * tensor.element_size();
    header[name] = {{"dtype", NameOfDtype(tensor.scalar_type())},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + header_text.size() + offset);
  const uint64_t header_size = header_text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header_size >> (8 * i)) & 0xff));
  out += header_text;
  for (const auto& [name, tensor] : ordered) {
    out.append(static_cast<const char*>(tensor.data_ptr()), tensor.numel() * tensor.element_size());
  }
  return out;
}

absl::Status CheckFiniteTensors(const TensorMap& tensors, const std::string& source) {
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined() || !at::isFloatingType(tensor.scalar_type())) continue;
    const int64_t bad = tensor.numel() - at::isfinite(tensor).sum().item<int64_t>();
    if (bad > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": tensor '", name, "' holds ", bad, " NaN or infinite value",
          bad == 1 ? "" : "s", " (of ", tensor.numel(), "); the file is damaged, or it was "
          "saved from a run whose values had diverged"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors) {
  absl::StatusOr<std::string> bytes = SerializeSafetensors(tensors);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  }
  return WriteFileAtomically(path, *bytes);
}

}  // namespace taskmoe
