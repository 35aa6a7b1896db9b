#include "run_program.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>

namespace ds::test {
namespace {

std::string shell_quote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

ProgramRun run_program(const std::string& program, const std::vector<std::string>& args) {
  std::string command = "OMP_NUM_THREADS=1 " + shell_quote(program);
  for (const auto& arg : args) command += " " + shell_quote(arg);
  command += " 2>&1";
  ProgramRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  std::array<char, 4096> buffer;
  for (std::size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) {
    run.output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string line_after(const std::string& text, const std::string& marker) {
  const auto found = text.rfind(marker);
  if (found == std::string::npos) return "";
  const auto start = found + marker.size();
  return text.substr(start, text.find('\n', start) - start);
}

}  // namespace ds::test
