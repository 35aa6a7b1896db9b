#pragma once
// Timing for the benchmarks: candidates are run interleaved (A, B, A, B, ...) so that a burst of
// load from elsewhere on the machine hits all of them alike, and each reports its median.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
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

}  // namespace ds::bench
