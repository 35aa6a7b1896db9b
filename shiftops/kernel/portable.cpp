// The shift loops of loops.inc as plain C++ for any CPU: compiled without AVX (SSE vectors at
// most on x86-64, whatever -march says), so this path is the one every machine can run.
#if defined(__x86_64__)
#pragma GCC target("no-avx")
#endif
#pragma GCC optimize("O3")
#include "shiftops/kernel/loops.hpp"

namespace ds::shift::kernel::portable {
#include "shiftops/kernel/loops.inc"
}  // namespace ds::shift::kernel::portable
