#include "moe/formats/tensorboard_events.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

uint32_t BigEndian32(absl::string_view bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  return value;
}

// The image fields of a PNG, from its IHDR chunk (the first chunk of every PNG).
absl::StatusOr<tensorboard::Summary::Image> PngImage(absl::string_view png) {
  constexpr absl::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  // Signature, IHDR's length and type, width, height, bit depth, colour type.
  if (png.size() < 26 || png.substr(0, 8) != kSignature || png.substr(12, 4) != "IHDR") {
    return absl::InvalidArgumentError(
        absl::StrCat(png.size(), " bytes that are not a PNG (no PNG signature and IHDR chunk)"));
  }
  tensorboard::Summary::Image image;
  image.set_width(static_cast<int32_t>(BigEndian32(png, 16)));
  image.set_height(static_cast<int32_t>(BigEndian32(png, 20)));
  // PNG colour types (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA) as TensorBoard's
  // colorspaces (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
  const uint8_t colour_type = static_cast<uint8_t>(png[25]);
  image.set_colorspace(colour_type == 0 ? 1 : colour_type == 4 ? 2 : colour_type == 6 ? 4 : 3);
  image.set_encoded_image_string(png.data(), png.size());
  return image;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Create(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", error.message()));
  const std::string name = absl::StrCat(dir, "/events.out.tfevents.",
                                        absl::ToUnixSeconds(absl::Now()), ".", HostName());
  absl::StatusOr<std::unique_ptr<TFRecordWriter>> records = TFRecordWriter::Create(name);
  for (int suffix = 1; absl::IsAlreadyExists(records.status()); ++suffix) {
    records = TFRecordWriter::Create(absl::StrCat(name, ".", suffix));
  }
  if (!records.ok()) return records.status();
  std::unique_ptr<EventFileWriter> writer(new EventFileWriter(*std::move(records)));
  tensorboard::Event event;
  event.set_file_version(kEventFileVersion);
  TASKMOE_RETURN_IF_ERROR(writer->WriteEvent(event));
  return writer;
}

absl::Status EventFileWriter::WriteScalars(
    int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  tensorboard::Event event;
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tensorboard::Summary::Value* summary_value = event.mutable_summary()->add_value();
    summary_value->set_tag(tag);
    summary_value->set_simple_value(static_cast<float>(value));
  }
  return WriteEvent(event);
}

absl::Status EventFileWriter::WritePng(int64_t step, const std::string& tag,
                                       absl::string_view png) {
  absl::StatusOr<tensorboard::Summary::Image> image = PngImage(png);
  if (!image.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TensorBoard image ", tag, ": ", image.status().message()));
  }
  tensorboard::Event event;
  event.set_step(step);
  tensorboard::Summary::Value* value = event.mutable_summary()->add_value();
  value->set_tag(tag);
  *value->mutable_image() = *std::move(image);
  return WriteEvent(event);
}

absl::Status EventFileWriter::WriteEvent(tensorboard::Event& event) {
  event.set_wall_time(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  return records_->Write(event.SerializeAsString());
}

}  // namespace taskmoe
