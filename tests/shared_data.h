#ifndef TASKMOE_TESTS_SHARED_DATA_H_
#define TASKMOE_TESTS_SHARED_DATA_H_

#include <string>

namespace taskmoe::testing {

// Path of a file under ../shared (e.g. "fixtures/bart_tiny/config.json") as a test sees it:
// tests list the @shared//:... filegroup in `data`, and Bazel places it in the runfiles.
inline std::string SharedPath(const std::string& relative) {
  return "external/shared/" + relative;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_SHARED_DATA_H_
