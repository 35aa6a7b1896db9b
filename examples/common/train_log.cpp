#include "examples/common/train_log.hpp"

#include <charconv>
#include <cstdio>
#include <sstream>

#include "tensor/error.hpp"

namespace ds::trainer {

std::string exact(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

double parse_double(const std::string& text, const std::string& what) {
  double value = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    fail(what, ": expected a number, got '", text, "'");
  }
  return value;
}

std::string log_csv(const std::vector<EpochRecord>& records) {
  std::string text = "epoch,train_loss,test_loss,top1,top5,seconds\n";
  for (const auto& r : records) {
    text += std::to_string(r.epoch) + ',' + exact(r.train_loss) + ',' + exact(r.test_loss) + ',' +
            exact(r.top1) + ',' + exact(r.top5) + ',' + exact(r.seconds) + '\n';
  }
  return text;
}

std::vector<EpochRecord> parse_log_csv(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  std::vector<EpochRecord> records;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
    if (fields.size() != 6) fail(source, ": malformed training log line '", line, "'");
    EpochRecord r;
    r.epoch = static_cast<int>(parse_double(fields[0], source + " epoch"));
    r.train_loss = parse_double(fields[1], source + " train_loss");
    r.test_loss = parse_double(fields[2], source + " test_loss");
    r.top1 = parse_double(fields[3], source + " top1");
    r.top5 = parse_double(fields[4], source + " top5");
    r.seconds = parse_double(fields[5], source + " seconds");
    records.push_back(r);
  }
  return records;
}

}  // namespace ds::trainer
