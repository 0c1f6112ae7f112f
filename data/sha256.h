#ifndef TASKMOE_DATA_SHA256_H_
#define TASKMOE_DATA_SHA256_H_

// SHA-256 (FIPS 180-4), used to key and checksum on-disk caches: a stable content hash that
// does not change between runs or builds (unlike absl::Hash).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace taskmoe {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  void Update(std::string_view bytes);
  // Unambiguous framing for hashing several fields: the length, then the bytes.
  void UpdateField(std::string_view bytes);
  void UpdateInt(uint64_t value);
  // Finishes the hash; the object must not be updated afterwards.
  Digest Finish();

  static Digest Of(std::string_view bytes);
  static std::string Hex(const Digest& digest);

 private:
  void Compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace taskmoe

#endif  // TASKMOE_DATA_SHA256_H_
