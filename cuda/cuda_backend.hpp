#pragma once
// The CUDA implementation of the device interface (tensor/backend.hpp). Memory and copies are
// in cuda_backend.cpp, products in matmul.cpp; the kernels are in the .cu files. Every call
// runs on the stream of the tensors' device, so work is queued, not waited for; copies to the
// host wait for it. Memory is allocated on the tensor's own device; the ops run on the thread's
// current device (ds::cuda::set_device, default 0) and refuse tensors of another.
#include "tensor/backend.hpp"

namespace ds::cuda {

// The index of t's device, which must be the thread's current one (a clear error otherwise).
int device_of(const Tensor& t);

class CudaBackend final : public Backend {
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
  void reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) override;
  void softmax(const Tensor& in, bool log, const Tensor& out) override;
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void im2col(const Tensor& in, const Window& window, double pad_value, const Tensor& out) override;
  void col2im(const Tensor& cols, const Window& window, const Tensor& out) override;
  void batch_norm(const BatchNormForward& pass) override;
  void batch_norm_backward(const BatchNormBackward& pass) override;
  void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer,
                const SgdUpdate& update) override;
};

}  // namespace ds::cuda
