// CPU/GPU agreement for every primitive of the device interface (tensor/backend.hpp), reached
// through the public ops so that the dispatch is covered too, with strided, transposed and
// broadcast operands. Transcendentals and sums may differ from the CPU by rounding; exact
// ops (copies, comparisons, integer arithmetic, min/max, im2col/col2im) must agree bit for bit.
// Every case skips with a message when the machine has no GPU.
#include <catch2/catch.hpp>
#include <limits>
#include <utility>

#include "cuda/cuda.hpp"
#include "device_helpers.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

using namespace ds;
using test::require_close;
using test::require_identical;

namespace {

const Device gpu = Device::cuda();

Tensor on_gpu(const Tensor& t) { return t.to(gpu); }

Tensor random_of(DType dtype, const Shape& shape, double low = -4, double high = 4) {
  return uniform(shape, low, high, DType::f64).to(dtype);
}

// op(input, weight) and both gradients on the GPU against the CPU (sums in another order).
template <typename Op>
void require_agreement(Op op, const Tensor& x, const Tensor& weight) {
  const Tensor cx = x.clone().requires_grad_(), cw = weight.clone().requires_grad_();
  const Tensor gx = on_gpu(x).requires_grad_(), gw = on_gpu(weight).requires_grad_();
  const Tensor cpu_out = op(cx, cw), gpu_out = op(gx, gw);
  require_close(cpu_out, gpu_out, 1e-5, 1e-4);
  const Tensor g = random_of(DType::f32, cpu_out.shape());
  cpu_out.backward(g);
  gpu_out.backward(on_gpu(g));
  require_close(cx.grad(), gx.grad(), 1e-5, 1e-4);
  require_close(cw.grad(), gw.grad(), 1e-5, 1e-4);
}

}  // namespace

TEST_CASE("host-device copies round-trip every dtype", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  for (DType dtype : {DType::f32, DType::f64, DType::i32, DType::i8, DType::u8}) {
    INFO(dtype_name(dtype));
    const Tensor x = random_of(dtype, {5, 7}, 0, 100);
    const Tensor back = on_gpu(x).to(Device::cpu());
    REQUIRE(back.device() == Device::cpu());
    require_identical(x, back);
  }
}

TEST_CASE("device copies convert dtypes and pack strided views", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor x = random_of(DType::f32, {6, 5, 4}, -100, 100);
  const Tensor g = on_gpu(x);
  require_identical(x.permute({2, 0, 1}).contiguous(), g.permute({2, 0, 1}).contiguous());
  require_identical(x.slice(1, 0, 5, 2).contiguous(), g.slice(1, 0, 5, 2).contiguous());
  for (DType dtype : {DType::f64, DType::i32, DType::i8}) {
    INFO(dtype_name(dtype));
    require_identical(x.to(dtype), g.to(dtype));
    require_identical(x.transpose(0, 2).to(dtype), g.transpose(0, 2).to(dtype));
  }
  const Tensor bytes = random_of(DType::u8, {9}, 0, 255);
  require_identical(bytes.to(DType::f32), on_gpu(bytes).to(DType::f32));
}

TEST_CASE("fill writes every dtype, also through a strided view", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  for (DType dtype : {DType::f32, DType::f64, DType::i32, DType::i8, DType::u8}) {
    INFO(dtype_name(dtype));
    require_identical(Tensor::full({3, 4}, 7, dtype), Tensor::full({3, 4}, 7, dtype, gpu));
  }
  const Tensor x = Tensor::zeros({4, 6});
  const Tensor g = Tensor::zeros({4, 6}, DType::f32, gpu);
  x.slice(1, 1, 6, 2).fill_(3.5);
  g.slice(1, 1, 6, 2).fill_(3.5);
  require_identical(x, g);
}

TEST_CASE("unary ops agree with the CPU", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    const Tensor x = random_of(dtype, {33, 17});
    const Tensor positive = random_of(dtype, {33, 17}, 0.01, 50);
    const Tensor gx = on_gpu(x), gp = on_gpu(positive);
    const double tol = dtype == DType::f32 ? 2e-6 : 1e-14;
    require_identical(neg(x), neg(gx));
    require_identical(abs(x.t()), abs(gx.t()));
    require_identical(sign(x), sign(gx));
    require_identical(floor(x), floor(gx));
    require_close(exp(x), exp(gx), tol, 0);
    require_close(exp2(x), exp2(gx), tol, 0);
    require_close(log(positive), log(gp), tol, tol);
    require_close(log2(positive), log2(gp), tol, tol);
    require_close(sqrt(positive.t()), sqrt(gp.t()), tol, 0);
  }
  // Round half to even, including the ties.
  const Tensor ties =
      Tensor::from_vector<float>({-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, 3.7f}, {7});
  require_identical(round(ties), round(on_gpu(ties)));
  for (DType dtype : {DType::i32, DType::i8}) {
    INFO(dtype_name(dtype));
    const Tensor x = random_of(dtype, {40}, -100, 100);
    require_identical(neg(x), neg(on_gpu(x)));
    require_identical(abs(x), abs(on_gpu(x)));
    require_identical(sign(x), sign(on_gpu(x)));
  }
  REQUIRE_THROWS_AS(log(on_gpu(Tensor::ones({2}, DType::i32))), Error);
}

TEST_CASE("clamp agrees with the CPU, one-sided and on integers", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor x = random_of(DType::f32, {10, 10});
  require_identical(clamp(x, -1.0, 2.0), clamp(on_gpu(x), -1.0, 2.0));
  require_identical(clamp(x.t(), std::nullopt, 0.5), clamp(on_gpu(x).t(), std::nullopt, 0.5));
  const Tensor i = random_of(DType::i32, {50}, -1000, 1000);
  require_identical(clamp(i, -10.0, std::nullopt), clamp(on_gpu(i), -10.0, std::nullopt));
}

TEST_CASE("binary ops and comparisons broadcast as on the CPU", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor a = random_of(DType::f32, {4, 1, 5});
  const Tensor b = random_of(DType::f32, {3, 1});
  const Tensor ga = on_gpu(a), gb = on_gpu(b);
  require_identical(a + b, ga + gb);
  require_identical(a - b, ga - gb);
  require_identical(a * b, ga * gb);
  require_identical(a / b, ga / gb);
  require_identical(maximum(a, b), maximum(ga, gb));
  require_identical(minimum(a, b), minimum(ga, gb));
  require_close(pow(abs(a), b), pow(abs(ga), gb), 4e-6, 1e-30);
  require_identical(eq(a, floor(a)), eq(ga, floor(ga)));
  require_identical(ne(a, b), ne(ga, gb));
  require_identical(lt(a, b), lt(ga, gb));
  require_identical(le(a, b), le(ga, gb));
  require_identical(gt(a, b), gt(ga, gb));
  require_identical(ge(a, b), ge(ga, gb));
  // A transposed operand against a contiguous one.
  const Tensor m = random_of(DType::f64, {7, 9});
  const Tensor n = random_of(DType::f64, {9, 7});
  require_identical(m + n.t(), on_gpu(m) + on_gpu(n).t());
  // NaN propagates through maximum.
  const Tensor nan = Tensor::from_vector<float>({std::numeric_limits<float>::quiet_NaN(), 1}, {2});
  const Tensor one = Tensor::ones({2});
  require_identical(maximum(nan, one), maximum(on_gpu(nan), on_gpu(one)));
  // Integer arithmetic wraps around.
  const Tensor big = Tensor::full({3}, 100, DType::i8);
  require_identical(big + big, on_gpu(big) + on_gpu(big));
  const Tensor ints = random_of(DType::i32, {6, 6}, -50, 50);
  require_identical(ints * ints.t(), on_gpu(ints) * on_gpu(ints).t());
}

TEST_CASE("where selects with a broadcast condition", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor a = random_of(DType::f32, {4, 6});
  const Tensor b = random_of(DType::f32, {6});
  const Tensor condition = gt(random_of(DType::f32, {4, 1}), Tensor::scalar(0));
  require_identical(where(condition, a, b), where(on_gpu(condition), on_gpu(a), on_gpu(b)));
}

TEST_CASE("reductions agree with the CPU, short and long rows", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  for (const Shape& shape : {Shape{5, 3, 4}, Shape{3, 200000}, Shape{64, 700}, Shape{1000003}}) {
    INFO("shape " << shape_str(shape));
    const Tensor x = random_of(DType::f32, shape);
    const Tensor g = on_gpu(x);
    const std::int64_t last = static_cast<std::int64_t>(shape.size()) - 1;
    require_close(sum(x), sum(g), 1e-6, 1e-4);
    require_close(sum(x, {last}), sum(g, {last}), 1e-6, 1e-4);
    require_close(mean(x, {0}), mean(g, {0}), 1e-6, 1e-6);
    require_identical(max(x, {last}), max(g, {last}));
    require_identical(min(x), min(g));
    require_identical(argmax(x, last), argmax(g, last));
    require_identical(argmin(x), argmin(g));
  }
  const Tensor ints = random_of(DType::i32, {300, 70}, -1000, 1000);
  require_identical(sum(ints, {1}), sum(on_gpu(ints), {1}));
  require_identical(max(ints, {0}), max(on_gpu(ints), {0}));
  // The first maximum wins ties, and NaN wins max and argmax.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor ties = Tensor::from_vector<float>({1, 3, 3, 2, nan, 5, nan, 0}, {2, 4});
  require_identical(argmax(ties, 1), argmax(on_gpu(ties), 1));
  require_identical(max(ties, {1}), max(on_gpu(ties), {1}));
  require_identical(argmin(ties, 1), argmin(on_gpu(ties), 1));
}

TEST_CASE("softmax and log-softmax agree with the CPU", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  for (const Shape& shape : {Shape{3, 7}, Shape{64, 1000}, Shape{2, 5000}}) {
    INFO("shape " << shape_str(shape));
    const Tensor x = random_of(DType::f32, shape, -20, 20);
    require_close(softmax(x, -1), softmax(on_gpu(x), -1), 1e-5, 1e-7);
    require_close(log_softmax(x, -1), log_softmax(on_gpu(x), -1), 1e-5, 1e-5);
    require_close(softmax(x, 0), softmax(on_gpu(x), 0), 1e-5, 1e-7);
  }
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor masked = Tensor::from_vector<float>({-inf, 0, 1, -inf, -inf, -inf}, {2, 3});
  require_close(log_softmax(masked, 1), log_softmax(on_gpu(masked), 1), 1e-6, 1e-6);
}

TEST_CASE("matmul agrees with the CPU for transposed and batched operands", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor a = random_of(DType::f32, {37, 19});
  const Tensor b = random_of(DType::f32, {19, 23});
  const Tensor ga = on_gpu(a), gb = on_gpu(b);
  require_close(matmul(a, b), matmul(ga, gb), 1e-5, 1e-4);
  require_close(matmul(b.t(), a.t()), matmul(gb.t(), ga.t()), 1e-5, 1e-4);
  require_close(matmul(a.t().contiguous().t(), b), matmul(ga.t().contiguous().t(), gb), 1e-5, 1e-4);
  const Tensor batch = random_of(DType::f64, {4, 6, 5});
  const Tensor right = random_of(DType::f64, {5, 3});
  require_close(matmul(batch, right), matmul(on_gpu(batch), on_gpu(right)), 1e-12, 1e-12);
  require_close(matmul(batch.transpose(1, 2), batch),
                matmul(on_gpu(batch).transpose(1, 2), on_gpu(batch)), 1e-12, 1e-12);
  const Tensor row = random_of(DType::f32, {1, 19});
  require_close(matmul(row, b), matmul(on_gpu(row), gb), 1e-5, 1e-4);
  require_close(matmul(b.t(), row.t()), matmul(gb.t(), on_gpu(row).t()), 1e-5, 1e-4);
  const Tensor empty_k = Tensor::zeros({3, 0});
  require_identical(matmul(empty_k, Tensor::zeros({0, 4})),
                    matmul(on_gpu(empty_k), Tensor::zeros({0, 4}, DType::f32, gpu)));
}

TEST_CASE("unfold and fold (im2col, col2im) agree bit for bit", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor x = random_of(DType::f32, {2, 3, 11, 9});
  for (const Window& w : {Window{3, 3, 1, 1, 1, 1, 1, 1}, Window{3, 2, 2, 1, 1, 0, 2, 1},
                          Window{2, 2, 2, 2, 0, 0, 1, 1}, Window{5, 5, 1, 1, 2, 2, 1, 1}}) {
    INFO("kernel " << w.kernel_h << "x" << w.kernel_w << " stride " << w.stride_h << " pad "
                   << w.pad_h << " dilation " << w.dilation_h);
    const Tensor columns = unfold(x, w, -1.5);
    require_identical(columns, unfold(on_gpu(x), w, -1.5));
    require_identical(fold(columns, w, 11, 9), fold(on_gpu(columns), w, 11, 9));
  }
}

TEST_CASE("convolve and its gradients agree with the CPU", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  // Batch 4 takes the CPU's image-by-image path; the GPU runs the composed default.
  const Tensor x = random_of(DType::f32, {4, 3, 10, 9});
  for (const Window& w : {Window{3, 3, 1, 1, 1, 1, 1, 1}, Window{3, 2, 2, 1, 1, 0, 2, 1},
                          Window{1, 1, 1, 1, 0, 0, 1, 1}}) {
    INFO("kernel " << w.kernel_h << "x" << w.kernel_w << " stride " << w.stride_h);
    const Tensor weight = random_of(DType::f32, {5, 3 * w.kernel_h * w.kernel_w});
    require_agreement([&](const Tensor& in, const Tensor& k) { return convolve(in, k, w); }, x,
                      weight);
  }
}

TEST_CASE("depthwise_convolve and its gradients agree with the CPU", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  // The CPU's plane-by-plane kernels against the GPU's composed default (unfolded images and a
  // product batched over the channels), with multipliers 1 and 2.
  const Tensor x = random_of(DType::f32, {4, 3, 10, 9});
  for (const auto& [w, multiplier] : {std::pair{Window{3, 3, 1, 1, 1, 1, 1, 1}, 1},
                                      std::pair{Window{3, 2, 2, 1, 1, 0, 2, 1}, 2}}) {
    INFO("kernel " << w.kernel_h << "x" << w.kernel_w << " multiplier " << multiplier);
    const Tensor weight = random_of(DType::f32, {3 * multiplier, w.kernel_h * w.kernel_w});
    require_agreement(
        [&](const Tensor& in, const Tensor& k) { return depthwise_convolve(in, k, w); }, x, weight);
  }
}

TEST_CASE("device errors are ds::Error with the CUDA message", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  REQUIRE_THROWS_WITH(Tensor::empty({std::int64_t{1} << 48}, DType::f32, gpu),
                      Catch::Contains("out of GPU memory"));
  REQUIRE_THROWS_AS(Tensor::ones({2}, DType::f32, Device::cuda(cuda::device_count())), Error);
  // The device stays usable after the failed allocation.
  require_identical(Tensor::ones({3}), Tensor::ones({3}, DType::f32, gpu));
}

TEST_CASE("a tensor's memory is on its own device", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  if (cuda::device_count() < 2) {
    WARN("one CUDA device: allocation on another device not checked");
    return;
  }
  const std::size_t before = cuda::memory_stats(1).in_use_bytes;
  const Tensor other = Tensor::empty({1 << 20}, DType::f32, Device::cuda(1));
  CHECK(cuda::memory_stats(1).in_use_bytes >= before + (std::size_t{4} << 20));
  // The ops run on the current device (0) and refuse it rather than touch another GPU's memory.
  CHECK_THROWS_WITH(Tensor(other).fill_(0), Catch::Contains("not on the current CUDA device"));
}

TEST_CASE("the launch counter counts the back-end's kernels and products", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const Tensor a = on_gpu(random_of(DType::f32, {4, 4}));
  const std::size_t before = cuda::kernel_launches();
  const Tensor sum = a + a;  // one elementwise kernel
  CHECK(cuda::kernel_launches() == before + 1);
  const Tensor product = matmul(a, a);  // a cuBLAS product among them
  CHECK(cuda::kernel_launches() > before + 1);
}

TEST_CASE("the caching allocator reuses freed device memory", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  { const Tensor warm = Tensor::empty({1 << 20}, DType::f32, gpu); }
  const std::size_t before = cuda::memory_stats().device_allocations;
  for (int i = 0; i < 10; ++i) {
    const Tensor t = Tensor::empty({1 << 20}, DType::f32, gpu);
    REQUIRE(cuda::memory_stats().in_use_bytes >= std::size_t{4} << 20);
  }
  REQUIRE(cuda::memory_stats().device_allocations == before);
  cuda::synchronize();
  cuda::empty_cache();
  REQUIRE(cuda::memory_stats().cached_bytes == 0);
}
