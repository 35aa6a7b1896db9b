#pragma once
// The CPU implementation of the device interface; its kernels are split by family over
// cpu_backend.cpp (memory, copies), elementwise.cpp, reduce.cpp, matmul.cpp, im2col.cpp,
// conv2d.cpp and depthwise_conv.cpp.
#include "tensor/backend.hpp"

namespace ds::cpu {

class CpuBackend final : public Backend {
 public:
  std::shared_ptr<void> allocate(std::size_t nbytes, Device device) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void copy_to_host(const Tensor& src, void* host) override;
  void copy_from_host(const void* host, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void unary(UnaryOp op, const Tensor& in, const Tensor& out) override;
  void clamp(const Tensor& in, double low, double high, const Tensor& out) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void where(const Tensor& condition, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void relu_backward(const Tensor& output, const Tensor& grad, const Tensor& out) override;
  void reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) override;
  void softmax(const Tensor& in, bool log, const Tensor& out) override;
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void im2col(const Tensor& in, const Window& window, double pad_value, const Tensor& out) override;
  void col2im(const Tensor& cols, const Window& window, const Tensor& out) override;
  void conv2d(const Tensor& x, const Tensor& weight, const Window& window,
              const Tensor& out) override;
  void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad_out,
                       const Window& window, const Tensor& grad_x,
                       const Tensor& grad_weight) override;
  void depthwise_conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                        const Tensor& out) override;
  void depthwise_conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad_out,
                                 const Window& window, const Tensor& grad_x,
                                 const Tensor& grad_weight) override;
  void batch_norm(const BatchNormForward& pass) override;
  void batch_norm_backward(const BatchNormBackward& pass) override;
};

}  // namespace ds::cpu
