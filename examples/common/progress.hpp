#pragma once
// The progress line of an epoch: batches done, running loss and accuracy, images per second
// and the time left. On a terminal one line is rewritten in place (\r); otherwise (a log file,
// a pipe) a plain line is printed every `interval` batches and after the last one.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ds::trainer {

class ProgressLine {
 public:
  ProgressLine(std::string label, std::int64_t total_batches, int interval,
               std::FILE* out = stdout);
  // After each batch: its size, the sum of its losses and its correct predictions.
  void update(std::int64_t images, double loss_sum, std::int64_t correct);
  // Ends the line (a terminal keeps the last state).
  void finish();

  double mean_loss() const { return images_ ? loss_sum_ / images_ : 0.0; }
  double accuracy() const { return images_ ? 100.0 * correct_ / images_ : 0.0; }
  double seconds() const;

 private:
  void print(bool final_line);

  std::string label_;
  std::int64_t total_, done_ = 0, images_ = 0, correct_ = 0;
  double loss_sum_ = 0.0;
  int interval_;
  std::FILE* out_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1m05s", "12s".
std::string format_duration(double seconds);

}  // namespace ds::trainer
