// Foundation benchmark: the tensor API against Eigen and plain loops on the same buffers, so that
// any gap is the cost of our layer (dispatch, views, output allocation), not of the hardware.
// Figures are printed, never asserted: a benchmark does not fail on speed.
// GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsics when Eigen's
// vectorised exp is inlined here; they are not about this file's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <omp.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tensor/ops.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
#include "timing.hpp"

namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ArrayMap = Eigen::Map<Eigen::ArrayXf>;

RowMajor::MapType matrix_of(const ds::Tensor& t) {
  return {t.data<float>(), t.shape()[0], t.shape()[1]};
}

ArrayMap array_of(const ds::Tensor& t) { return {t.data<float>(), t.numel()}; }

float max_abs_difference(const ds::Tensor& a, const ds::Tensor& b) {
  return (array_of(a) - array_of(b)).abs().maxCoeff();
}

void bench_matmul(std::int64_t n, ds::bench::Timing timing) {
  const ds::Tensor a = ds::randn({n, n});
  const ds::Tensor b = ds::randn({n, n});
  ds::Tensor ours = ds::matmul(a, b);
  const ds::Tensor eigen_out = ds::Tensor::empty({n, n});
  const auto ma = matrix_of(a), mb = matrix_of(b);
  auto mc = matrix_of(eigen_out);

  const auto seconds = ds::bench::interleaved_medians(
      {[&] { ours = ds::matmul(a, b); }, [&] { mc.noalias() = ma * mb; }}, timing);
  const double flop = 2.0 * n * n * n;
  std::printf(
      "matmul  n=%-5lld  ours %8.2f GFLOP/s  eigen %8.2f GFLOP/s  time ours/eigen %.3f"
      "  (max |diff| %.1e, %d samples)\n",
      static_cast<long long>(n), flop / seconds[0] * 1e-9, flop / seconds[1] * 1e-9,
      seconds[0] / seconds[1], max_abs_difference(ours, eigen_out), timing.repeats);
}

void print_throughput(const char* op, const char* name, double bytes, double seconds,
                      double ours_seconds) {
  std::printf("%-4s %-34s %7.2f GB/s  ours/this %.3f\n", op, name, bytes / seconds * 1e-9,
              ours_seconds / seconds);
}

// out = a + b: 2 reads and 1 write per element.
void bench_add(std::int64_t numel, ds::bench::Timing timing) {
  const ds::Tensor a = ds::randn({numel});
  const ds::Tensor b = ds::randn({numel});
  ds::Tensor ours = ds::add(a, b);
  const ds::Tensor out = ds::Tensor::empty({numel});
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();

  const ds::Tensor accumulator = ds::Tensor::zeros({numel});

  const auto seconds =
      ds::bench::interleaved_medians({[&] { ours = ds::add(a, b); }, [&] { accumulator.add_(b); },
                                      [&] {
#pragma omp parallel for schedule(static)
                                        for (std::int64_t i = 0; i < numel; ++i)
                                          po[i] = pa[i] + pb[i];
                                      },
                                      [&] { array_of(out) = array_of(a) + array_of(b); }},
                                     timing);
  const double bytes = 3.0 * numel * sizeof(float);
  print_throughput("add", "ds::add (allocates its output)", bytes, seconds[0], seconds[0]);
  print_throughput("add", "ds add_ (in place, no allocation)", bytes, seconds[1], seconds[0]);
  print_throughput("add", "plain loop, OpenMP", bytes, seconds[2], seconds[0]);
  print_throughput("add", "Eigen array, 1 thread", bytes, seconds[3], seconds[0]);
  std::printf("add  max |diff| ours vs Eigen %.1e\n", max_abs_difference(ours, out));
}

// out = exp(a): 1 read and 1 write per element.
void bench_exp(std::int64_t numel, ds::bench::Timing timing) {
  const ds::Tensor a = ds::randn({numel});
  ds::Tensor ours = ds::exp(a);
  const ds::Tensor out = ds::Tensor::empty({numel});
  const float* pa = a.data<float>();
  float* po = out.data<float>();

  const auto seconds = ds::bench::interleaved_medians({[&] { ours = ds::exp(a); },
                                                       [&] {
#pragma omp parallel for schedule(static)
                                                         for (std::int64_t i = 0; i < numel; ++i)
                                                           po[i] = std::exp(pa[i]);
                                                       },
                                                       [&] { array_of(out) = array_of(a).exp(); }},
                                                      timing);
  const double bytes = 2.0 * numel * sizeof(float);
  print_throughput("exp", "ds::exp (allocates its output)", bytes, seconds[0], seconds[0]);
  print_throughput("exp", "plain loop std::exp, OpenMP", bytes, seconds[1], seconds[0]);
  print_throughput("exp", "Eigen array, 1 thread", bytes, seconds[2], seconds[0]);
  std::printf("exp  max |rel diff| ours vs Eigen %.1e\n",
              ((array_of(ours) - array_of(out)) / array_of(out)).abs().maxCoeff());
}

}  // namespace

int main() {
  std::printf("bench_tensor: f32, %d OpenMP threads, Eigen %d.%d.%d (%s, %d threads)\n",
              omp_get_max_threads(), EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION,
              Eigen::SimdInstructionSetsInUse(), Eigen::nbThreads());
  std::printf("%s; load average (1 min) at start: %s\n", ds::bench::cpu_model().c_str(),
              ds::bench::load_average().c_str());
  std::printf(
      "medians of interleaved samples; ratios are time ours/other (1.05 = ours 5%% "
      "slower)\n\n");
  bench_matmul(256, {.repeats = 21, .calls_per_sample = 20});
  bench_matmul(1024, {.repeats = 15, .calls_per_sample = 1});
  bench_matmul(2048, {.repeats = 7, .calls_per_sample = 1});
  std::printf("\n");
  constexpr std::int64_t kElements = std::int64_t{1} << 24;  // 16M f32: 64 MB per tensor
  bench_add(kElements, {.repeats = 15, .calls_per_sample = 1});
  bench_exp(kElements, {.repeats = 15, .calls_per_sample = 1});
  std::printf("\nload average (1 min) at end: %s\n", ds::bench::load_average().c_str());
  return 0;
}
