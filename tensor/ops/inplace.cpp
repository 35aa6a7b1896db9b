// In-place updates. They never record (see check_inplace) and bump the storage version, so a
// graph that saved the old value reports the change instead of computing wrong gradients.
#include <limits>

#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

namespace {

const Tensor& binary_inplace(const char* name, BinaryOp op, const Tensor& self,
                             const Tensor& other) {
  detail::check_inplace(name, self);
  detail::check_same_dtype(name, self, other);
  detail::check_same_device(name, self, other);
  const Shape shape = broadcast_shapes(self.shape(), other.shape(), name);
  if (shape != self.shape())
    fail(name, ": the result of shape ", shape, " does not fit the tensor of shape ", self.shape());
  backend_for(self.device()).binary(op, self, detail::broadcast_to(other, shape, name), self);
  self.storage().bump_version();
  return self;
}

}  // namespace

const Tensor& Tensor::fill_(double value) const {
  detail::check_inplace("fill_", *this);
  backend_for(device()).fill(*this, value);
  storage().bump_version();
  return *this;
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  detail::check_inplace("copy_", *this);
  const Shape shape = broadcast_shapes(this->shape(), src.shape(), "copy_");
  if (shape != this->shape())
    fail("copy_: source of shape ", src.shape(), " does not fit the tensor of shape ",
         this->shape());
  const Tensor source = src.device() == device() ? src : src.to(device());
  backend_for(device()).copy(detail::broadcast_to(source, shape, "copy_"), *this);
  storage().bump_version();
  return *this;
}

const Tensor& Tensor::add_(const Tensor& other, double alpha) const {
  if (alpha == 1.0) return binary_inplace("add_", BinaryOp::add, *this, other);
  NoGradGuard no_grad;
  return binary_inplace("add_", BinaryOp::add, *this, other * alpha);
}

const Tensor& Tensor::add_(double value) const {
  return binary_inplace("add_", BinaryOp::add, *this, detail::scalar_like(value, *this));
}

const Tensor& Tensor::sub_(const Tensor& other) const {
  return binary_inplace("sub_", BinaryOp::sub, *this, other);
}

const Tensor& Tensor::mul_(const Tensor& other) const {
  return binary_inplace("mul_", BinaryOp::mul, *this, other);
}

const Tensor& Tensor::mul_(double value) const {
  return binary_inplace("mul_", BinaryOp::mul, *this, detail::scalar_like(value, *this));
}

const Tensor& Tensor::div_(const Tensor& other) const {
  if (!is_floating(dtype()))
    fail("div_: integer division is not defined here (", describe(*this), ")");
  return binary_inplace("div_", BinaryOp::div, *this, other);
}

const Tensor& Tensor::clamp_(std::optional<double> low, std::optional<double> high) const {
  detail::check_inplace("clamp_", *this);
  const double lo = low.value_or(-std::numeric_limits<double>::infinity());
  const double hi = high.value_or(std::numeric_limits<double>::infinity());
  if (lo > hi) fail("clamp_: lower bound ", lo, " is above upper bound ", hi);
  backend_for(device()).clamp(*this, lo, hi, *this);
  storage().bump_version();
  return *this;
}

const Tensor& Tensor::round_() const {
  detail::check_inplace("round_", *this);
  backend_for(device()).unary(UnaryOp::round, *this, *this);
  storage().bump_version();
  return *this;
}

}  // namespace ds
