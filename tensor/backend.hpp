#pragma once
// The device interface. Every tensor op validates shapes and dtypes once, in tensor/ops, and
// then calls one of these primitive kernels on the backend of the tensor's device; the CPU
// backend lives in tensor/cpu, the CUDA backend in cuda/ (registered at start-up when built).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/device.hpp"

namespace ds {

class Tensor;
struct BatchNormForward;
struct BatchNormBackward;

// A 2-D sliding window (convolution and pooling geometry).
struct Window {
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;

  std::int64_t out_h(std::int64_t in_h) const {
    return positions_along(in_h + 2 * pad_h - dilation_h * (kernel_h - 1) - 1, stride_h);
  }
  std::int64_t out_w(std::int64_t in_w) const {
    return positions_along(in_w + 2 * pad_w - dilation_w * (kernel_w - 1) - 1, stride_w);
  }
  // Window positions along a dimension whose last tap can start `reach` elements in: none when
  // the window is wider than the padded input (the division truncates toward zero, which would
  // count one position for a window up to a stride too wide, as PyTorch's floor does not).
  static std::int64_t positions_along(std::int64_t reach, std::int64_t stride) {
    return reach < 0 ? 0 : reach / stride + 1;
  }
};

// Batch normalisation's view of its input: [batch, channels, inner], where [N, C] has inner 1
// and [N, C, H, W] inner H * W (tensor/batch_norm.hpp).
struct BatchNormLayout {
  std::int64_t batch, channels, inner;
  std::int64_t count() const { return batch * inner; }  // values per channel
};

// One SGD update of a parameter (optim/sgd.cpp): d = grad + weight_decay * param; with
// momentum, buffer = d on the first step, else momentum * buffer + (1 - dampening) * d, and
// d = buffer (Nesterov: d + momentum * buffer); then param += -lr * d.
struct SgdUpdate {
  double lr, weight_decay, momentum, dampening;
  bool nesterov, first_step;
};

enum class UnaryOp { neg, exp, exp2, log, log2, sqrt, abs, sign, floor, round };
enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge };
enum class ReduceOp { sum, max, min, argmax, argmin };

const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);
const char* op_name(ReduceOp op);
inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq; }

class Backend {
 public:
  virtual ~Backend() = default;
  // Memory for a tensor on `device` (one of this backend's kind).
  virtual std::shared_ptr<void> allocate(std::size_t nbytes, Device device) = 0;
  // Same shape and device; dtypes may differ (values are converted as by static_cast).
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  // Between this device and the host: both contiguous, same dtype and element count.
  virtual void copy_to_host(const Tensor& src, void* host) = 0;
  virtual void copy_from_host(const void* host, const Tensor& dst) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;
  // All operands of one call have the same shape (broadcast operands arrive as stride-0 views)
  // and `out` may alias an input element for element (in-place ops).
  virtual void unary(UnaryOp op, const Tensor& in, const Tensor& out) = 0;
  virtual void clamp(const Tensor& in, double low, double high, const Tensor& out) = 0;
  // Comparisons write u8 0/1; other ops write the operands' dtype.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  virtual void where(const Tensor& condition, const Tensor& a, const Tensor& b,
                     const Tensor& out) = 0;
  // ReLU's gradient from its output: out = grad where output > 0, else 0 (one shape, dtype and
  // device). The
  // default composes a comparison and `where`; a back-end may take one pass instead of two.
  virtual void relu_backward(const Tensor& output, const Tensor& grad, const Tensor& out);
  // `in` has the reduced dims last (the caller permutes); `out` is contiguous with the
  // leading dims. argmax/argmin write i32 flat indices within the reduced block.
  virtual void reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) = 0;
  // Softmax or log-softmax over the last dim of a contiguous tensor.
  virtual void softmax(const Tensor& in, bool log, const Tensor& out) = 0;
  // out[b] = a[b] @ b[b]; a [B, n, k], b [B, k, m], out [B, n, m] contiguous; inputs may be
  // transposed views and may have batch stride 0 (broadcast).
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // im2col: in [N, C, H, W] contiguous -> out [N, C * kh * kw, out_h * out_w]; positions in
  // the padding read `pad_value`. col2im adds the columns back into a zeroed [N, C, H, W].
  virtual void im2col(const Tensor& in, const Window& window, double pad_value,
                      const Tensor& out) = 0;
  virtual void col2im(const Tensor& cols, const Window& window, const Tensor& out) = 0;
  // Convolution without groups as one call, so that a back-end may work image by image with
  // the columns in cache: x [N, C, H, W] and weight [O, C * kh * kw] contiguous, out [N, O,
  // out_h * out_w]. The default (composed.hpp) unfolds as many images at a time as fit 256 MiB
  // and runs one batched product per group.
  virtual void conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                      const Tensor& out);
  // Its gradients for grad_out [N, O, out_h * out_w] contiguous: writes grad_x [N, C, H, W] and
  // grad_weight [O, C * kh * kw], each only when defined.
  virtual void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad_out,
                               const Window& window, const Tensor& grad_x,
                               const Tensor& grad_weight);
  // Depthwise convolution (groups = input channels): x [N, C, H, W] and weight [C * M, kh * kw]
  // contiguous, out [N, C * M, out_h * out_w], output channel o reading input channel o / M.
  // The default (composed.hpp) unfolds a few images at a time and runs a product batched over
  // the channels per image; the backward writes grad_x and grad_weight, each only when defined.
  virtual void depthwise_conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                                const Tensor& out);
  virtual void depthwise_conv2d_backward(const Tensor& x, const Tensor& weight,
                                         const Tensor& grad_out, const Window& window,
                                         const Tensor& grad_x, const Tensor& grad_weight);
  // Batch normalisation's forward and backward in a few fused passes (tensor/batch_norm.hpp
  // says what each reads and writes).
  virtual void batch_norm(const BatchNormForward& pass) = 0;
  virtual void batch_norm_backward(const BatchNormBackward& pass) = 0;
  // The SGD update of `param` in place; `buffer` (the momentum buffer, like param) is defined
  // when momentum is not 0. The default composes elementwise ops; a back-end may run one pass.
  virtual void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer,
                        const SgdUpdate& update);
};

Backend& backend_for(Device device);
// Installs the backend of a device kind; the CUDA module calls this when it is linked in.
void register_backend(DeviceKind kind, Backend* backend);
bool has_backend(DeviceKind kind);

}  // namespace ds
