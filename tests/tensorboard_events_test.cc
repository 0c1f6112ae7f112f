// TensorBoard event files read back by the independent decoder of tests/event_files.h:
// CRC-32C test vectors, the framing, the Event wire format (TensorBoard's field numbers),
// scalars and PNG bytes that round-trip, and a truncated last record.
#include "moe/formats/tensorboard_events.h"

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "moe/base/file_io.h"
#include "moe/formats/tensorboard_event.pb.h"
#include "moe/formats/tfrecord.h"
#include "tests/event_files.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using testing::DecodeTFRecords;
using testing::DecodedRecords;
using testing::ReadEventFile;
using testing::ThreeByTwoPng;

std::string Bytes(int count, int first, int increment) {
  std::string bytes;
  for (int i = 0; i < count; ++i) bytes.push_back(static_cast<char>(first + i * increment));
  return bytes;
}

// Test vectors of RFC 3720 (iSCSI), appendix B.4, and the common check value.
TEST(Crc32cTest, StandardVectors) {
  struct Vector {
    std::string data;
    uint32_t crc;
  };
  const std::vector<Vector> vectors = {{"123456789", 0xE3069283},
                                       {std::string(32, '\0'), 0x8A9136AA},
                                       {std::string(32, '\xff'), 0x62A8AB43},
                                       {Bytes(32, 0, 1), 0x46DD794E},
                                       {Bytes(32, 31, -1), 0x113FDB5C},
                                       {"", 0}};
  for (const Vector& v : vectors) {
    EXPECT_EQ(Crc32c(v.data), v.crc) << absl::CEscape(v.data);
    // The test's own CRC agrees, so the decoder below checks real CRCs.
    EXPECT_EQ(testing::BitwiseCrc32c(v.data), v.crc) << absl::CEscape(v.data);
  }
}

TEST(Crc32cTest, MaskRotatesRightBy15AndAddsTheConstant) {
  EXPECT_EQ(MaskCrc32c(0), 0xa282ead8u);
  EXPECT_EQ(MaskCrc32c(0x00008000), 0xa282ead9u);  // bit 15 rotates to bit 0
  EXPECT_EQ(MaskCrc32c(0x00000001), 0xa284ead8u);  // bit 0 rotates to bit 17
}

TEST(TFRecordTest, FramingIsLengthCrcDataCrc) {
  const std::string data = "hello, events";
  const std::string record = FrameTFRecord(data);
  ASSERT_EQ(record.size(), 8 + 4 + data.size() + 4);
  EXPECT_EQ(testing::LittleEndian(record.substr(0, 8)), data.size());
  EXPECT_EQ(record.substr(12, data.size()), data);
  const DecodedRecords decoded = DecodeTFRecords(record + FrameTFRecord(""));
  EXPECT_EQ(decoded.records, (std::vector<std::string>{data, ""}));
  EXPECT_FALSE(decoded.truncated);
  EXPECT_EQ(decoded.corruption, "");
  // One flipped bit in the data is caught by the data CRC.
  std::string flipped = record;
  flipped[14] ^= 4;
  EXPECT_NE(DecodeTFRecords(flipped).corruption, "");
}

TEST(TFRecordTest, WriterNeverOverwritesAFile) {
  const std::string dir = testing::FreshTempDir("no_overwrite");
  fs::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomically(dir + "/taken", "keep").ok());
  absl::StatusOr<std::unique_ptr<TFRecordWriter>> writer = TFRecordWriter::Create(dir + "/taken");
  EXPECT_TRUE(absl::IsAlreadyExists(writer.status())) << writer.status();
  EXPECT_EQ(*ReadFileBytes(dir + "/taken"), "keep");
}

TEST(EventFileWriterTest, FileNameIsTensorFlowsAndFirstEventIsTheFileVersion) {
  const std::string dir = testing::FreshTempDir("events_name");
  absl::StatusOr<std::unique_ptr<EventFileWriter>> writer = EventFileWriter::Create(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Flush().ok());
  const std::string name = fs::path((*writer)->path()).filename().string();
  ASSERT_TRUE(absl::StartsWith(name, "events.out.tfevents.")) << name;
  const std::vector<std::string> parts = absl::StrSplit(name, absl::MaxSplits('.', 4));
  ASSERT_EQ(parts.size(), 5u) << name;
  int64_t seconds = 0;
  ASSERT_TRUE(absl::SimpleAtoi(parts[3], &seconds)) << name;
  EXPECT_NEAR(static_cast<double>(seconds), static_cast<double>(time(nullptr)), 60);
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(parts[4], host);

  const testing::EventFile file = ReadEventFile((*writer)->path());
  const DecodedRecords& decoded = file.decoded;
  const std::vector<tensorboard::Event>& events = file.events;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_NEAR(events[0].wall_time(), static_cast<double>(time(nullptr)), 60);
  // On the wire: field 3, length-delimited (tag byte 0x1a), 13 bytes.
  EXPECT_TRUE(absl::StrContains(decoded.records[0], std::string("\x1a\x0d") + "brain.Event:2"));

  // A second writer in the same directory gets a file of its own.
  absl::StatusOr<std::unique_ptr<EventFileWriter>> second = EventFileWriter::Create(dir);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*second)->path(), (*writer)->path());
}

TEST(EventFileWriterTest, ScalarsAndPngRoundTrip) {
  const std::string dir = testing::FreshTempDir("events_round_trip");
  absl::StatusOr<std::unique_ptr<EventFileWriter>> writer = EventFileWriter::Create(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->WriteScalars(10, {{"train/loss", 2.5}, {"train/lr/model", 1e-4}}).ok());
  ASSERT_TRUE((*writer)->WritePng(20, "routes/soft", ThreeByTwoPng()).ok());
  ASSERT_TRUE((*writer)->WriteScalars(20, {{"dev/loss", -0.125}}).ok());
  ASSERT_TRUE((*writer)->Flush().ok());

  const testing::EventFile file = ReadEventFile((*writer)->path());
  const DecodedRecords& decoded = file.decoded;
  const std::vector<tensorboard::Event>& events = file.events;
  EXPECT_FALSE(decoded.truncated);
  EXPECT_EQ(decoded.corruption, "");
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].step(), 10);
  ASSERT_EQ(events[1].summary().value_size(), 2);
  EXPECT_EQ(events[1].summary().value(0).tag(), "train/loss");
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 2.5f);
  EXPECT_EQ(events[1].summary().value(1).tag(), "train/lr/model");
  EXPECT_EQ(events[1].summary().value(1).simple_value(), 1e-4f);
  EXPECT_EQ(events[2].step(), 20);
  ASSERT_EQ(events[2].summary().value_size(), 1);
  const tensorboard::Summary::Value& image = events[2].summary().value(0);
  EXPECT_EQ(image.tag(), "routes/soft");
  ASSERT_TRUE(image.has_image());
  EXPECT_EQ(image.image().encoded_image_string(), ThreeByTwoPng());
  EXPECT_EQ(image.image().width(), 3);
  EXPECT_EQ(image.image().height(), 2);
  EXPECT_EQ(image.image().colorspace(), 3);  // RGB
  EXPECT_EQ(events[3].summary().value(0).simple_value(), -0.125f);
  EXPECT_LE(events[1].wall_time(), events[3].wall_time());

  // On the wire, TensorBoard's field numbers: Event.summary 5 (0x2a), Value.tag 1 (0x0a),
  // Value.simple_value 2 as fixed32 (0x15; 2.5f = 0x40200000 little-endian), Value.image 4
  // (0x22), Image.height 1 / width 2 as varints (0x08, 0x10).
  // wall_time (0x09 and 8 bytes), step (0x10, varint 10), then the summary.
  EXPECT_EQ(decoded.records[1].substr(9, 3), "\x10\x0a\x2a");
  EXPECT_TRUE(absl::StrContains(decoded.records[1],
                                std::string("\x0a\x0atrain/loss\x15\x00\x00\x20\x40", 17)));
  EXPECT_TRUE(absl::StrContains(decoded.records[2], std::string("\x0a\x0broutes/soft\x22", 14)));
  EXPECT_TRUE(absl::StrContains(decoded.records[2], std::string("\x08\x02\x10\x03\x18\x03", 6)));
}

TEST(EventFileWriterTest, TruncatedLastRecordKeepsTheEarlierOnes) {
  const std::string dir = testing::FreshTempDir("events_truncated");
  std::string path;
  {
    absl::StatusOr<std::unique_ptr<EventFileWriter>> writer = EventFileWriter::Create(dir);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int step = 1; step <= 3; ++step) {
      ASSERT_TRUE((*writer)->WriteScalars(step, {{"train/loss", 1.0 / step}}).ok());
    }
    path = (*writer)->path();
  }
  const std::string whole = *ReadFileBytes(path);
  const size_t last_record = 16 + DecodeTFRecords(whole).records.back().size();
  // A killed run leaves the last record cut anywhere: in its data CRC, its data, its header.
  for (const size_t cut : {size_t{3}, size_t{10}, last_record - 5}) {
    ASSERT_TRUE(WriteFileAtomically(path, whole.substr(0, whole.size() - cut)).ok());
    const testing::EventFile file = ReadEventFile(path);
    const DecodedRecords& decoded = file.decoded;
    const std::vector<tensorboard::Event>& events = file.events;
    EXPECT_TRUE(decoded.truncated) << cut;
    EXPECT_EQ(decoded.corruption, "") << cut;
    ASSERT_EQ(events.size(), 3u) << cut;  // file_version and steps 1, 2
    EXPECT_EQ(events[0].file_version(), "brain.Event:2");
    EXPECT_EQ(events[2].step(), 2);
    EXPECT_EQ(events[2].summary().value(0).simple_value(), 0.5f);
  }
}

TEST(EventFileWriterTest, ErrorsNameWhatIsWrong) {
  const std::string dir = testing::FreshTempDir("events_errors");
  absl::StatusOr<std::unique_ptr<EventFileWriter>> writer = EventFileWriter::Create(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const absl::Status not_png = (*writer)->WritePng(1, "routes/soft", "GIF89a and more bytes...");
  EXPECT_TRUE(absl::IsInvalidArgument(not_png));
  EXPECT_TRUE(absl::StrContains(not_png.message(), "routes/soft")) << not_png;
  EXPECT_TRUE(absl::StrContains(not_png.message(), "not a PNG")) << not_png;

  // A directory that cannot be created (its parent is a file).
  ASSERT_TRUE(WriteFileAtomically(dir + "/file", "x").ok());
  absl::StatusOr<std::unique_ptr<EventFileWriter>> bad = EventFileWriter::Create(dir + "/file/tb");
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), dir + "/file/tb")) << bad.status();
}

}  // namespace
}  // namespace taskmoe
