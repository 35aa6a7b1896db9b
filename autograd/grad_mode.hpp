#pragma once

namespace ds {

// Whether ops record the graph; thread-local so that loader threads never record.
class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool enabled);
};

// Disables recording for its scope (optimizer steps, evaluation, in-place parameter updates).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace ds
