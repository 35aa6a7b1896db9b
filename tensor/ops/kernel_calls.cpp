#include "tensor/ops/kernel_calls.hpp"

#include <bit>
#include <cstdint>
#include <vector>

#include "autograd/grad_mode.hpp"

namespace ds::detail {

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    fail(op, ": dtypes differ: ", describe(a), " and ", describe(b),
         " (convert one with .to(dtype))");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    fail(op, ": tensors on different devices: ", describe(a), " on ", a.device().str(), " and ",
         describe(b), " on ", b.device().str());
}

Tensor scalar_like(double value, const Tensor& like) {
  if (like.device().is_cpu()) return Tensor::scalar(value, like.dtype(), like.device());
  // Elsewhere a new scalar costs a kernel launch, and a training step is bound by launches while
  // it uses the same few values over and over (learning rate, momentum, eps, 0, 1): those are
  // kept, per thread, value, dtype, device and back-end (a test may register another one for
  // the device). Every caller only reads its scalar; one that was written to anyway (its
  // version moved) is made anew.
  struct Kept {
    std::uint64_t bits;
    DType dtype;
    Device device;
    const Backend* backend;
    Tensor scalar;
    std::uint64_t version;
  };
  // Never destroyed: device memory must not be freed after the driver has shut down.
  thread_local auto* kept = new std::vector<Kept>;
  const auto bits = std::bit_cast<std::uint64_t>(value);
  const Backend* backend = &backend_for(like.device());
  const auto fresh = [&] { return Tensor::scalar(value, like.dtype(), like.device()); };
  for (Kept& k : *kept)
    if (k.bits == bits && k.dtype == like.dtype() && k.device == like.device() &&
        k.backend == backend) {
      if (k.scalar.storage().version() != k.version) {
        k.scalar = fresh();
        k.version = k.scalar.storage().version();
      }
      return k.scalar;
    }
  if (kept->size() >= 64) kept->clear();
  const Tensor scalar = fresh();
  kept->push_back({bits, like.dtype(), like.device(), backend, scalar, scalar.storage().version()});
  return scalar;
}

Tensor raw_view(const Tensor& t, const Shape& shape, const Shape& strides, std::int64_t offset) {
  return Tensor::from_storage(t.storage(), shape, strides, offset, t.dtype());
}

Tensor broadcast_to(const Tensor& t, const Shape& shape, const char* op) {
  if (t.shape() == shape) return t;
  if (t.dim() > shape.size())
    fail(op, ": cannot broadcast shape ", t.shape(), " to ", shape, " (too many dims)");
  const std::size_t lead = shape.size() - t.dim();
  Shape strides(shape.size(), 0);
  for (std::size_t i = 0; i < t.dim(); ++i) {
    const std::int64_t from = t.shape()[i], to = shape[lead + i];
    if (from == to)
      strides[lead + i] = t.strides()[i];
    else if (from != 1)
      fail(op, ": cannot broadcast shape ", t.shape(), " to ", shape);
  }
  return raw_view(t, shape, strides, t.offset());
}

Tensor run_unary(UnaryOp op, const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device()).unary(op, x, out);
  return out;
}

Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = op_name(op);
  check_same_dtype(name, a, b);
  check_same_device(name, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, is_comparison(op) ? DType::u8 : a.dtype(), a.device());
  backend_for(a.device())
      .binary(op, broadcast_to(a, shape, name), broadcast_to(b, shape, name), out);
  return out;
}

void check_inplace(const char* op, const Tensor& self) {
  if (GradMode::enabled() && self.requires_grad())
    fail(op, ": in-place update of a tensor that requires grad (", describe(self),
         "); wrap it in a NoGradGuard, as optimizers do");
}

}  // namespace ds::detail
