// CrossFit's user files on the same bytes: a task TSV (then formatted as model text), a split
// JSON and an ontology JSON (read from a file, as the tools read them).

#include <string>

#include <glog/logging.h>

#include "data/crossfit.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void FormatExamples(const std::vector<taskmoe::Example>& examples) {
  taskmoe::FormatOptions options;
  options.lowercase = true;  // Python's Unicode lower() on whatever the file held
  options.append_another_bos = true;
  for (const taskmoe::Example& example : examples) {
    taskmoe::FormatInput("fuzz-task", example.input, options);
    CHECK(!example.outputs.empty());
    for (const std::string& output : example.outputs) taskmoe::FormatOutput(output, options);
  }
}

void ReadJsonFiles(std::string_view bytes) {
  const std::string path = taskmoe::fuzzing::WriteScratchFile("split.json", bytes);
  taskmoe::ReadTaskSplit(path).IgnoreError();
  const absl::StatusOr<taskmoe::Ontology> ontology = taskmoe::ReadOntology(path);
  if (!ontology.ok()) return;
  for (const std::string& task : ontology->TasksInOrder()) ontology->CategoryOf(task);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes = taskmoe::fuzzing::AsText(data, size);
  const absl::StatusOr<std::vector<taskmoe::Example>> examples =
      taskmoe::ParseTsv(bytes, "fuzz.tsv");
  if (examples.ok()) FormatExamples(*examples);
  ReadJsonFiles(bytes);
  return 0;
}
