#pragma once
// The tensor handle: a cheap, reference-counted view (shape, strides, offset, dtype) onto a
// shared Storage, plus the autograd fields that make reverse-mode differentiation possible.
// Copying a Tensor copies the handle, never the data (as in PyTorch).
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/device.hpp"
#include "tensor/dtype.hpp"
#include "tensor/error.hpp"
#include "tensor/shape.hpp"
#include "tensor/storage.hpp"

namespace ds {

namespace autograd {
class Node;
}

struct TensorImpl {
  Storage storage;
  Shape shape;
  Shape strides;  // in elements
  std::int64_t offset = 0;
  DType dtype = DType::f32;

  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;         // set on results of recorded ops
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves: the node that sums into .grad
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  // Values start, start+step, ... below end (like torch.arange).
  static Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // A view of a view-compatible view: a tensor sharing `storage` (used by loaders and views).
  static Tensor from_storage(Storage storage, const Shape& shape, const Shape& strides,
                             std::int64_t offset, DType dtype);

  // ---- metadata
  bool defined() const { return static_cast<bool>(impl_); }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  std::int64_t size(std::int64_t dim) const;
  std::int64_t stride(std::int64_t dim) const;
  std::int64_t offset() const { return impl().offset; }
  std::size_t dim() const { return impl().shape.size(); }
  std::int64_t numel() const { return numel_of(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage.device(); }
  const Storage& storage() const { return impl().storage; }
  bool is_contiguous() const;
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- host data access (CPU tensors); data<T>() points at element 0 and checks the dtype
  template <typename T>
  T* data() const;
  void* data_ptr() const;  // element 0, any dtype and device (device memory for device tensors)
  template <typename T>
  std::vector<T> to_vector() const;  // any layout or device, copied in logical order
  double item() const;               // one-element tensors

  // ---- autograd
  bool requires_grad() const { return impl().requires_grad; }
  // Only leaves (tensors no recorded op produced) and only floating dtypes may require grad.
  Tensor& requires_grad_(bool enabled = true);
  bool is_leaf() const { return !impl().grad_fn; }
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  // Accumulates d(this)/d(leaf) into every leaf's .grad. `gradient` defaults to 1 for a
  // one-element tensor. The graph is freed afterwards unless retain_graph.
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, records nothing

  // ---- views (share storage; differentiable)
  Tensor view(const Shape& shape) const;     // fails when the strides do not allow it
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor select(std::int64_t dim, std::int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor squeeze() const;
  Tensor squeeze(std::int64_t dim) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place updates: for optimizers, initialisers and the clamps of shift layers.
  // They are never recorded, and are refused on a tensor that requires grad while grad mode
  // is on (use a NoGradGuard), because the graph may have saved its old value.
  const Tensor& fill_(double value) const;
  const Tensor& zero_() const { return fill_(0.0); }
  const Tensor& copy_(const Tensor& src) const;  // broadcasts src, converts dtype
  const Tensor& add_(const Tensor& other, double alpha = 1.0) const;
  const Tensor& add_(double value) const;
  const Tensor& sub_(const Tensor& other) const;
  const Tensor& mul_(const Tensor& other) const;
  const Tensor& mul_(double value) const;
  const Tensor& div_(const Tensor& other) const;
  const Tensor& clamp_(std::optional<double> low, std::optional<double> high) const;
  const Tensor& round_() const;

  // ---- method forms of the common ops (see tensor/ops.hpp)
  Tensor sum() const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor abs() const;
  Tensor sqrt() const;
  Tensor matmul(const Tensor& other) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);
std::string describe(const Tensor& tensor);  // "f32[2, 3]" (plus the device when not the CPU)

}  // namespace ds
