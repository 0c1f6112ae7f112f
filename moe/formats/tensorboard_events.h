#ifndef TASKMOE_MOE_FORMATS_TENSORBOARD_EVENTS_H_
#define TASKMOE_MOE_FORMATS_TENSORBOARD_EVENTS_H_

// TensorBoard event files: a TFRecord file (moe/formats/tfrecord.h) of serialized Event messages
// (moe/formats/tensorboard_event.proto), the first holding file_version "brain.Event:2", the
// rest scalar and image summaries. `tensorboard --logdir DIR` reads every file under DIR whose
// name contains "tfevents".

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "moe/formats/tensorboard_event.pb.h"
#include "moe/formats/tfrecord.h"

namespace taskmoe {

inline constexpr char kEventFileVersion[] = "brain.Event:2";

class EventFileWriter {
 public:
  // Creates `dir` if needed and in it events.out.tfevents.<unix seconds>.<hostname>
  // (TensorFlow's name), with a suffix .1, .2, ... when another writer took that name in the
  // same second; then writes the file_version event.
  static absl::StatusOr<std::unique_ptr<EventFileWriter>> Create(const std::string& dir);

  // One event at `step` whose summary holds a simple_value (a float) per (tag, value).
  absl::Status WriteScalars(int64_t step,
                            const std::vector<std::pair<std::string, double>>& scalars);

  // One event at `step` whose summary holds the PNG image `png` under `tag`, with the width,
  // height and colorspace of the PNG's header. Bytes that are not a PNG: InvalidArgument.
  absl::Status WritePng(int64_t step, const std::string& tag, absl::string_view png);

  // Makes everything written so far visible to readers of the file.
  absl::Status Flush() { return records_->Flush(); }

  const std::string& path() const { return records_->path(); }

 private:
  explicit EventFileWriter(std::unique_ptr<TFRecordWriter> records)
      : records_(std::move(records)) {}

  // Stamps `event` with the wall time and writes it.
  absl::Status WriteEvent(tensorboard::Event& event);

  std::unique_ptr<TFRecordWriter> records_;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_TENSORBOARD_EVENTS_H_
