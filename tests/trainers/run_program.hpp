#pragma once
// Runs a trainer program as a child process and captures what it printed, so that the tests
// see exactly what a user sees: exit status, messages and files.
#include <string>
#include <vector>

namespace ds::test {

struct ProgramRun {
  int status = -1;     // the exit status
  std::string output;  // stdout and stderr together
};

// Runs `program` with `args` (each passed as one word) on one OpenMP thread.
ProgramRun run_program(const std::string& program, const std::vector<std::string>& args);

// The text after the last occurrence of `marker` in `text`, up to the end of that line.
std::string line_after(const std::string& text, const std::string& marker);

}  // namespace ds::test
