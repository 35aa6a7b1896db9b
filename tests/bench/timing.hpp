#pragma once
// Timing for the benchmarks: candidates are run interleaved (A, B, A, B, ...) so that a burst of
// load from elsewhere on the machine hits all of them alike, and each reports its median.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace ds::bench {

struct Timing {
  int repeats;           // samples per candidate; the median is taken over them
  int calls_per_sample;  // calls timed together, so that short calls are not lost in clock noise
};

inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Median seconds per call of each candidate. Every candidate runs once untimed first, so that
// thread pools are started and caches and pages are warm for all of them.
inline std::vector<double> interleaved_medians(const std::vector<std::function<void()>>& candidates,
                                               Timing timing) {
  using Clock = std::chrono::steady_clock;
  for (const auto& run : candidates) run();
  std::vector<std::vector<double>> samples(candidates.size());
  for (int r = 0; r < timing.repeats; ++r) {
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      const auto start = Clock::now();
      for (int i = 0; i < timing.calls_per_sample; ++i) candidates[c]();
      const std::chrono::duration<double> elapsed = Clock::now() - start;
      samples[c].push_back(elapsed.count() / timing.calls_per_sample);
    }
  }
  std::vector<double> medians;
  for (auto& s : samples) medians.push_back(median(std::move(s)));
  return medians;
}

// What a benchmark's header names, as its figures depend on them: the CPU's model (the same
// kernels differ several-fold between machines of this project) and the 1-minute load average
// (other processes competing for the cores).
inline std::string cpu_model() {
  std::ifstream file("/proc/cpuinfo");
  std::string name = "unknown CPU", family, model, vectors = "no AVX2";
  const auto value = [](const std::string& line) {
    const std::size_t start = line.find_first_not_of(" \t", line.find(':') + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  };
  for (std::string line; std::getline(file, line) && line.find(':') != std::string::npos;) {
    if (line.rfind("model name", 0) == 0) name = value(line);
    if (line.rfind("cpu family", 0) == 0) family = value(line);
    if (line.rfind("model\t", 0) == 0) model = value(line);
    if (line.rfind("flags", 0) == 0) {
      const std::string flags = " " + value(line) + " ";
      vectors = flags.find(" avx512f ") != std::string::npos ? "AVX-512"
                : flags.find(" avx2 ") != std::string::npos  ? "AVX2"
                                                             : vectors;
    }
  }
  return name + " (family " + family + " model " + model + ", " + vectors + ")";
}

inline std::string load_average() {
  std::ifstream file("/proc/loadavg");
  std::string one_minute;
  file >> one_minute;
  return one_minute.empty() ? "unknown" : one_minute;
}

}  // namespace ds::bench
