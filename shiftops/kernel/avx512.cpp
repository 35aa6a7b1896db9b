// The shift loops of loops.inc compiled for AVX-512 (F, BW, VL, DQ; dispatch.cpp checks cpuid),
// with 512-bit vectors preferred.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")
#pragma GCC optimize("O3")
// GCC 12 reports the intrinsics' deliberately undefined start values (_mm512_undefined_*) as
// uninitialized when they are inlined into functions whose target comes from a pragma on a
// machine without AVX-512; the header's lines are covered by ignoring it before the include.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "shiftops/kernel/loops.hpp"

#define DS_SHIFT_PATH_AVX512 1

namespace ds::shift::kernel::avx512 {
#include "shiftops/kernel/loops.inc"
}  // namespace ds::shift::kernel::avx512
#endif
