// The shift loops of loops.inc compiled for AVX-512 (F, BW, VL, DQ; dispatch.cpp checks cpuid),
// with 512-bit vectors preferred.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")
#pragma GCC optimize("O3")
#include <immintrin.h>

#include "shiftops/kernel/loops.hpp"

#define DS_SHIFT_PATH_AVX512 1

namespace ds::shift::kernel::avx512 {
#include "shiftops/kernel/loops.inc"
}  // namespace ds::shift::kernel::avx512
#endif
