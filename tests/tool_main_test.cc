// The shared tool front door (tools/tool_main.h), through a probe tool built on it: the OpenMP
// wait policy it sets up, and errors and escaping exceptions as one line with exit code 1.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

using ::testing::HasSubstr;

// Runs the probe under `environment` (an `env` argument list, e.g. "-u OMP_WAIT_POLICY").
testing::ToolResult RunProbe(const std::string& environment, const std::string& arguments) {
  return testing::RunCommand("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + environment +
                             " tests/tool_main_probe " + arguments);
}

TEST(ToolMainTest, IdleOpenMpThreadsWaitPassivelyByDefault) {
  const testing::ToolResult result = RunProbe("", "");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("OMP_WAIT_POLICY=PASSIVE threads="));
}

TEST(ToolMainTest, KeepsTheWaitSettingsOfTheEnvironment) {
  EXPECT_THAT(RunProbe("OMP_WAIT_POLICY=active", "").output,
              HasSubstr("OMP_WAIT_POLICY=active threads="));
  // A spin count is a wait setting too: no policy is added beside it.
  EXPECT_THAT(RunProbe("GOMP_SPINCOUNT=1000", "").output,
              HasSubstr("OMP_WAIT_POLICY=(unset) threads="));
}

TEST(ToolMainTest, AnErrorIsOneLineAndExitCodeOne) {
  const testing::ToolResult result = RunProbe("OMP_WAIT_POLICY=passive", "--fail=status");
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1);
  EXPECT_THAT(result.output, HasSubstr("\ntool_main_probe: --fail=status: as asked\n"));
}

TEST(ToolMainTest, AnEscapingExceptionIsOneLineAndExitCodeOne) {
  testing::ToolResult result = RunProbe("", "--fail=exception");
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  EXPECT_THAT(result.output,
              HasSubstr("\ntool_main_probe: internal error: vector::_M_default_append\n"));
  result = RunProbe("", "--fail=unknown_exception");
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  EXPECT_THAT(result.output,
              HasSubstr("\ntool_main_probe: internal error: an unknown exception\n"));
}

TEST(ToolMainTest, AnOutputFlagMayNotNameAnInput) {
  const std::string dir = ::testing::TempDir() + "/outputs";
  std::filesystem::create_directories(dir + "/checkpoint");
  std::ofstream(dir + "/in.txt") << "input";
  const std::string error = "tool_main_probe: the output ";
  testing::ToolResult result =
      RunProbe("", "--input=" + dir + "/in.txt --output=" + dir + "/./in.txt");
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  EXPECT_EQ(result.output, error + dir + "/./in.txt would overwrite the input " + dir +
                               "/in.txt; write the output somewhere else\n");
  // An input inside an output directory, or among a list flag's paths.
  result = RunProbe("", "--input=" + dir + "/checkpoint --output=" + dir);
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  result = RunProbe("", "--inputs=/nonexistent," + dir + "/in.txt --output=" + dir + "/in.txt");
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  // Beside the inputs is fine.
  result = RunProbe("", "--input=" + dir + "/in.txt --output=" + dir + "/out.txt");
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

}  // namespace
}  // namespace taskmoe
