#include "examples/common/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace ds::trainer {

std::string format_duration(double seconds) {
  const long total = std::lround(std::max(seconds, 0.0));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ldh%02ldm", total / 3600, total / 60 % 60);
  } else if (total >= 60) {
    std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lds", total);
  }
  return text;
}

ProgressLine::ProgressLine(std::string label, std::int64_t total_batches, int interval,
                           std::FILE* out)
    : label_(std::move(label)),
      total_(total_batches),
      interval_(interval),
      out_(out),
      terminal_(isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLine::update(std::int64_t images, double loss_sum, std::int64_t correct) {
  ++done_;
  images_ += images;
  loss_sum_ += loss_sum;
  correct_ += correct;
  const bool last = done_ == total_;
  if (terminal_) {
    // Redrawing more than ten times a second only costs time.
    const auto now = std::chrono::steady_clock::now();
    if (last || now - last_draw_ > std::chrono::milliseconds(100)) {
      last_draw_ = now;
      print(false);
    }
  } else if (done_ % interval_ == 0 || last) {
    print(true);
  }
}

void ProgressLine::finish() {
  if (terminal_ && done_ > 0) std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressLine::print(bool plain) {
  const double elapsed = seconds();
  const double rate = elapsed > 0 ? images_ / elapsed : 0.0;
  const double eta = done_ > 0 ? elapsed / done_ * (total_ - done_) : 0.0;
  std::fprintf(out_, "%s%s [%lld/%lld] loss %.4f  acc %.2f%%  %.0f img/s  ETA %s%s",
               plain ? "" : "\r", label_.c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), mean_loss(), accuracy(), rate,
               format_duration(eta).c_str(), plain ? "\n" : "\x1b[K");
  std::fflush(out_);
}

}  // namespace ds::trainer
