#include "tensor/denormals.hpp"

#include <omp.h>

#include <algorithm>

#if defined(__SSE2__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

namespace ds {

namespace {

#if defined(__SSE2__)
void set_on_this_thread(bool enabled) {
  _MM_SET_FLUSH_ZERO_MODE(enabled ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
  _MM_SET_DENORMALS_ZERO_MODE(enabled ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
}
#endif

}  // namespace

bool set_flush_denormal(bool enabled) {
#if defined(__SSE2__)
  set_on_this_thread(enabled);
  // A region as wide as the pool can be: libgomp keeps its threads between regions, so the
  // kernels' later regions run on threads that have the mode, also when a team was once wider
  // than the current thread count.
  const int threads = std::max(omp_get_max_threads(), omp_get_num_procs());
#pragma omp parallel num_threads(threads)
  set_on_this_thread(enabled);
  return true;
#else
  (void)enabled;
  return false;
#endif
}

bool flush_denormal() {
#if defined(__SSE2__)
  return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON &&
         _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
#else
  return false;
#endif
}

}  // namespace ds
