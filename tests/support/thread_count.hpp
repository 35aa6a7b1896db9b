#pragma once
// The OpenMP thread count for a scope, restored however the scope ends (a failing REQUIRE
// throws out of it), so that one test's pinned count never leaks into the next.
#include <omp.h>

namespace ds::test {

class ThreadCount {
 public:
  explicit ThreadCount(int threads) { omp_set_num_threads(threads); }
  ~ThreadCount() { omp_set_num_threads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_ = omp_get_max_threads();
};

}  // namespace ds::test
