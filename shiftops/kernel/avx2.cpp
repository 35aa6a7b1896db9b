// The shift loops of loops.inc compiled for AVX2 (dispatch.cpp runs them only where cpuid
// reports AVX2, FMA and BMI2).
#if defined(__x86_64__)
// AVX-512 is switched off explicitly: a -march=native build on an AVX-512 machine would
// otherwise let it into this path too.
#pragma GCC target("avx2,fma,bmi2,no-avx512f")
#pragma GCC optimize("O3")
#include <immintrin.h>

#include "shiftops/kernel/loops.hpp"

#define DS_SHIFT_PATH_AVX2 1

namespace ds::shift::kernel::avx2 {
#include "shiftops/kernel/loops.inc"
}  // namespace ds::shift::kernel::avx2
#endif
