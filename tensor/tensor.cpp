#include "tensor/tensor.hpp"

#include <cmath>
#include <cstring>

#include "tensor/backend.hpp"
#include "tensor/ops.hpp"

namespace ds {

namespace {
std::shared_ptr<TensorImpl> make_impl(Storage storage, const Shape& shape, const Shape& strides,
                                      std::int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return impl;
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape)
    if (d < 0) fail("empty: negative dimension in shape ", shape);
  Storage storage(static_cast<std::size_t>(numel_of(shape)) * dtype_size(dtype), device);
  return Tensor(make_impl(std::move(storage), shape, contiguous_strides(shape), 0, dtype));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend_for(device).fill(t, value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor Tensor::arange(double start, double end, double step, DType dtype) {
  if (step == 0.0) fail("arange: step must be non-zero");
  const auto n = static_cast<std::int64_t>(std::max(0.0, std::ceil((end - start) / step)));
  Tensor t = empty({n}, dtype);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  if (static_cast<std::int64_t>(values.size()) != numel_of(shape))
    fail("from_vector: ", values.size(), " values do not fill shape ", shape);
  Tensor t = empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.data<T>(), values.data(), values.size() * sizeof(T));
  return t;
}

Tensor Tensor::from_storage(Storage storage, const Shape& shape, const Shape& strides,
                            std::int64_t offset, DType dtype) {
  if (shape.size() != strides.size())
    fail("from_storage: shape ", shape, " and strides ", strides, " differ in length");
  std::int64_t last = offset;
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] > 0) last += (shape[i] - 1) * strides[i];
  const auto needed = static_cast<std::size_t>(last + 1) * dtype_size(dtype);
  if (numel_of(shape) > 0 && (offset < 0 || needed > storage.nbytes()))
    fail("from_storage: a view of shape ", shape, " at offset ", offset,
         " reaches beyond a storage of ", storage.nbytes(), " bytes");
  return Tensor(make_impl(std::move(storage), shape, strides, offset, dtype));
}

TensorImpl& Tensor::impl() const {
  if (!impl_) fail("use of an undefined tensor");
  return *impl_;
}

std::int64_t Tensor::size(std::int64_t dim) const {
  return shape()[normalize_dim(dim, this->dim(), "size")];
}

std::int64_t Tensor::stride(std::int64_t dim) const {
  return strides()[normalize_dim(dim, this->dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = dim(); i-- > 0;) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

template <typename T>
T* Tensor::data() const {
  if (dtype() != dtype_of<T>())
    fail("data<", dtype_name(dtype_of<T>()), ">: tensor has dtype ", dtype_name(dtype()));
  if (!device().is_cpu()) fail("data(): tensor lives on ", device().str(), ", not the host");
  return static_cast<T*>(storage().data()) + offset();
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if (dtype() != dtype_of<T>())
    fail("to_vector<", dtype_name(dtype_of<T>()), ">: tensor has dtype ", dtype_name(dtype()));
  std::vector<T> values(static_cast<std::size_t>(numel()));
  const Tensor dense = detach().contiguous();
  if (values.empty()) return values;
  if (dense.device().is_cpu())
    std::memcpy(values.data(), dense.data<T>(), values.size() * sizeof(T));
  else
    backend_for(dense.device()).copy_to_host(dense, values.data());
  return values;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(storage().data()) +
         offset() * static_cast<std::int64_t>(dtype_size(dtype()));
}

double Tensor::item() const {
  if (numel() != 1) fail("item: tensor of shape ", shape(), " has ", numel(), " elements, not 1");
  return dispatch_dtype(dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return static_cast<double>(to_vector<T>()[0]);
  });
}

Tensor& Tensor::requires_grad_(bool enabled) {
  if (enabled && !is_floating(dtype()))
    fail("requires_grad_: only floating-point tensors can require grad, not ", dtype_name(dtype()));
  if (!is_leaf()) fail("requires_grad_: only leaf tensors can change requires_grad (use detach())");
  impl().requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined() && grad.shape() != shape())
    fail("set_grad: gradient of shape ", grad.shape(), " for a tensor of shape ", shape());
  impl().grad = grad.defined() ? grad.impl_ptr() : nullptr;
}

Tensor Tensor::detach() const {
  const auto& self = impl();
  return Tensor(make_impl(self.storage, self.shape, self.strides, self.offset, self.dtype));
}

Tensor Tensor::sum() const { return ds::sum(*this); }
Tensor Tensor::sum(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return ds::sum(*this, dims, keepdim);
}
Tensor Tensor::mean() const { return ds::mean(*this); }
Tensor Tensor::mean(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return ds::mean(*this, dims, keepdim);
}
Tensor Tensor::exp() const { return ds::exp(*this); }
Tensor Tensor::log() const { return ds::log(*this); }
Tensor Tensor::abs() const { return ds::abs(*this); }
Tensor Tensor::sqrt() const { return ds::sqrt(*this); }
Tensor Tensor::matmul(const Tensor& other) const { return ds::matmul(*this, other); }

std::string describe(const Tensor& tensor) {
  if (!tensor.defined()) return "undefined";
  return concat(dtype_name(tensor.dtype()), shape_str(tensor.shape()),
                tensor.device().is_cpu() ? "" : " " + tensor.device().str());
}

#define DS_INSTANTIATE(T)                                                      \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&); \
  template T* Tensor::data<T>() const;                                         \
  template std::vector<T> Tensor::to_vector<T>() const;
DS_INSTANTIATE(float)
DS_INSTANTIATE(double)
DS_INSTANTIATE(std::int32_t)
DS_INSTANTIATE(std::int8_t)
DS_INSTANTIATE(std::uint8_t)
#undef DS_INSTANTIATE

}  // namespace ds
