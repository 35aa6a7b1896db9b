// Views (reshape, permute, slices, broadcasts) share storage with their base; their gradient
// is the inverse rearrangement. contiguous, clone and to() copy, and pass the gradient back.
#include <algorithm>
#include <numeric>

#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

using autograd::record;
using detail::raw_view;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

namespace {

Shape infer_shape(const Shape& requested, std::int64_t numel, const char* op, const Shape& from) {
  Shape shape = requested;
  std::int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) fail(op, ": only one dim can be -1 in ", requested);
      inferred = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail(op, ": invalid size ", shape[i], " in ", requested);
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || numel % known != 0) fail(op, ": cannot view shape ", from, " as ", requested);
    shape[inferred] = numel / known;
  }
  if (numel_of(shape) != numel)
    fail(op, ": shape ", requested, " does not fit ", numel, " elements (input ", from, ")");
  return shape;
}

// The strides that let `shape` view memory laid out as (old_shape, old_strides), if any:
// groups of old dims that are contiguous with each other may be split or merged freely.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& shape) {
  if (old_shape.empty() || numel_of(shape) == 0) return contiguous_strides(shape);
  Shape strides(shape.size());
  auto view_d = static_cast<std::int64_t>(shape.size()) - 1;
  std::int64_t chunk_base_stride = old_strides.back();
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (auto tensor_d = static_cast<std::int64_t>(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[tensor_d];
    if (tensor_d == 0 || (old_shape[tensor_d - 1] != 1 &&
                          old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

Tensor record_reshape_like(const char* name, Tensor out, const Tensor& x) {
  return record(name, std::move(out), {x}, [shape = x.shape()](const Tensor& g, const Needs&) {
    return Grads{g.reshape(shape)};
  });
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  const Shape shape = infer_shape(requested, numel(), "view", this->shape());
  const auto strides = view_strides(this->shape(), this->strides(), shape);
  if (!strides)
    fail("view: shape ", this->shape(), " with strides ", this->strides(), " cannot be viewed as ",
         shape, " without a copy; use reshape()");
  return record_reshape_like("view", raw_view(*this, shape, *strides, offset()), *this);
}

Tensor Tensor::reshape(const Shape& requested) const {
  const Shape shape = infer_shape(requested, numel(), "reshape", this->shape());
  if (view_strides(this->shape(), this->strides(), shape)) return view(shape);
  return contiguous().view(shape);
}

Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const {
  if (dims.size() != dim())
    fail("permute: ", dims.size(), " dims given for a tensor of shape ", shape());
  std::vector<std::int64_t> order(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape new_shape(dims.size()), new_strides(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const int d = normalize_dim(dims[i], dim(), "permute");
    if (seen[d]) fail("permute: dim ", dims[i], " repeated in the order");
    seen[d] = true;
    order[i] = d;
    new_shape[i] = shape()[d];
    new_strides[i] = strides()[d];
  }
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<std::int64_t>(i);
  return record("permute", raw_view(*this, new_shape, new_strides, offset()), {*this},
                [inverse](const Tensor& g, const Needs&) { return Grads{g.permute(inverse)}; });
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
  std::vector<std::int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(dim0, dim(), "transpose")],
            order[normalize_dim(dim1, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::t() const {
  if (dim() != 2) fail("t: expects a 2-D tensor, got shape ", shape());
  return transpose(0, 1);
}

Tensor Tensor::slice(std::int64_t dim, std::int64_t start, std::int64_t end,
                     std::int64_t step) const {
  const int d = normalize_dim(dim, this->dim(), "slice");
  const std::int64_t size = shape()[d];
  if (step <= 0) fail("slice: step must be positive, got ", step);
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<std::int64_t>(start, 0, size);
  end = std::clamp<std::int64_t>(end, start, size);
  Shape new_shape = shape(), new_strides = strides();
  new_shape[d] = (end - start + step - 1) / step;
  new_strides[d] *= step;
  Tensor out = raw_view(*this, new_shape, new_strides, offset() + start * strides()[d]);
  return record(
      "slice", out, {*this},
      [full = shape(), device = device(), d, start, end, step](const Tensor& g, const Needs&) {
        Tensor grad = Tensor::zeros(full, g.dtype(), device);
        grad.slice(d, start, end, step).copy_(g);
        return Grads{grad};
      });
}

Tensor Tensor::narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const {
  const int d = normalize_dim(dim, this->dim(), "narrow");
  if (start < 0 || length < 0 || start + length > shape()[d])
    fail("narrow: range [", start, ", ", start + length, ") is outside dim ", dim, " of shape ",
         shape());
  return slice(d, start, start + length);
}

Tensor Tensor::select(std::int64_t dim, std::int64_t index) const {
  const int d = normalize_dim(dim, this->dim(), "select");
  const std::int64_t size = shape()[d];
  if (index < -size || index >= size)
    fail("select: index ", index, " is out of range for dim ", dim, " of shape ", shape());
  if (index < 0) index += size;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& requested) const {
  if (requested.size() < dim()) fail("expand: shape ", requested, " has fewer dims than ", shape());
  Shape target = requested;
  const std::size_t lead = requested.size() - dim();
  for (std::size_t i = 0; i < requested.size(); ++i)
    if (requested[i] == -1) {
      if (i < lead) fail("expand: -1 is not allowed for a new leading dim in ", requested);
      target[i] = shape()[i - lead];
    }
  return record(
      "expand", detail::broadcast_to(*this, target, "expand"), {*this},
      [shape = shape()](const Tensor& g, const Needs&) { return Grads{sum_to(g, shape)}; });
}

Tensor Tensor::squeeze() const {
  Shape new_shape;
  for (auto s : shape())
    if (s != 1) new_shape.push_back(s);
  return reshape(new_shape);
}

Tensor Tensor::squeeze(std::int64_t dim) const {
  const int d = normalize_dim(dim, this->dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape new_shape = shape(), new_strides = strides();
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  return record_reshape_like("squeeze", raw_view(*this, new_shape, new_strides, offset()), *this);
}

Tensor Tensor::unsqueeze(std::int64_t dim) const {
  const int d = normalize_dim(dim, this->dim() + 1, "unsqueeze");
  Shape new_shape = shape(), new_strides = strides();
  const std::int64_t stride =
      static_cast<std::size_t>(d) < this->dim() ? strides()[d] * shape()[d] : 1;
  new_shape.insert(new_shape.begin() + d, 1);
  new_strides.insert(new_strides.begin() + d, stride);
  return record_reshape_like("unsqueeze", raw_view(*this, new_shape, new_strides, offset()), *this);
}

Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int s = normalize_dim(start_dim, dim(), "flatten");
  const int e = normalize_dim(end_dim, dim(), "flatten");
  if (s > e) fail("flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape new_shape(shape().begin(), shape().begin() + s);
  new_shape.push_back(std::accumulate(shape().begin() + s, shape().begin() + e + 1, std::int64_t{1},
                                      std::multiplies<>()));
  new_shape.insert(new_shape.end(), shape().begin() + e + 1, shape().end());
  return reshape(new_shape);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  backend_for(device()).copy(*this, out);
  return record("clone", out, {*this}, [](const Tensor& g, const Needs&) { return Grads{g}; });
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), target, device());
  backend_for(device()).copy(*this, out);
  return record("to", out, {*this},
                [source = dtype()](const Tensor& g, const Needs&) { return Grads{g.to(source)}; });
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  const Tensor dense = detach().contiguous();
  Tensor out = Tensor::empty(shape(), dtype(), target);
  if (dense.device().is_cpu()) {
    backend_for(target).copy_from_host(dense.data_ptr(), out);
  } else if (target.is_cpu()) {
    backend_for(dense.device()).copy_to_host(dense, out.data_ptr());
  } else {  // between two accelerators, through the host
    const Tensor staging = dense.to(Device::cpu());
    backend_for(target).copy_from_host(staging.data_ptr(), out);
  }
  return record("to", out, {*this},
                [source = device()](const Tensor& g, const Needs&) { return Grads{g.to(source)}; });
}

}  // namespace ds
