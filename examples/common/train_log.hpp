#pragma once
// The per-epoch log: train_log.csv (epoch, train loss, test loss, top-1, top-5, seconds), the
// same rows as text inside checkpoints (so a resumed run continues the file), and numbers
// written so that they read back exactly.
#include <string>
#include <vector>

namespace ds::trainer {

struct EpochRecord {
  int epoch = 0;  // 1-based, as printed
  double train_loss = 0.0;
  double test_loss = 0.0;
  double top1 = 0.0;  // percent
  double top5 = 0.0;
  double seconds = 0.0;
};

// The shortest text that parses back to the same double.
std::string exact(double value);
// Parses the whole of `text`; ds::Error naming `what` otherwise.
double parse_double(const std::string& text, const std::string& what);

std::string log_csv(const std::vector<EpochRecord>& records);  // header line included
std::vector<EpochRecord> parse_log_csv(const std::string& text, const std::string& source);

}  // namespace ds::trainer
