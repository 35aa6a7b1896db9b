#include "cuda/cuda_backend.hpp"

#include "cuda/allocator.hpp"
#include "cuda/cuda.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "tensor/batch_norm.hpp"
#include "tensor/tensor.hpp"

namespace ds::cuda {

int device_of(const Tensor& t) {
  if (t.device().index != current_device())
    fail("tensor ", describe(t), " is not on the current CUDA device cuda:", current_device(),
         " (call ds::cuda::set_device first)");
  return t.device().index;
}

namespace {

cudaStream_t stream_of(const Tensor& t) { return use_device(device_of(t)); }

std::size_t bytes_of(const Tensor& t) {
  return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
}

Tensor dense(const Tensor& t, Backend& backend) {
  if (t.is_contiguous()) return t;
  Tensor packed = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend.copy(t, packed);
  return packed;
}

ImageGeometry geometry_of(const Tensor& image, const Window& w) {
  const auto& s = image.shape();
  return {s[0], s[1], s[2], s[3], w.out_h(s[2]), w.out_w(s[3])};
}

}  // namespace

std::shared_ptr<void> CudaBackend::allocate(std::size_t nbytes, Device device) {
  return allocate_on(device.index, nbytes);
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  const cudaStream_t stream = stream_of(dst);
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    check(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes_of(dst), cudaMemcpyDeviceToDevice,
                          stream),
          "cudaMemcpyAsync (device to device)");
    return;
  }
  launch_copy(make_layout<2>({&dst, &src}), dst.dtype(), dst.data_ptr(), src.dtype(),
              src.data_ptr(), stream);
}

void CudaBackend::copy_to_host(const Tensor& src, void* host) {
  const cudaStream_t stream = stream_of(src);
  check(cudaMemcpyAsync(host, src.data_ptr(), bytes_of(src), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync (device to host)");
  check(cudaStreamSynchronize(stream), "copy to host");
}

void CudaBackend::copy_from_host(const void* host, const Tensor& dst) {
  const cudaStream_t stream = stream_of(dst);
  check(cudaMemcpyAsync(dst.data_ptr(), host, bytes_of(dst), cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync (host to device)");
  // The caller may free or reuse `host` as soon as we return.
  check(cudaStreamSynchronize(stream), "copy from host");
}

void CudaBackend::fill(const Tensor& dst, double value) {
  launch_fill(make_layout<1>({&dst}), dst.dtype(), dst.data_ptr(), value, stream_of(dst));
}

void CudaBackend::unary(UnaryOp op, const Tensor& in, const Tensor& out) {
  launch_unary(op, in.dtype(), make_layout<2>({&out, &in}), out.data_ptr(), in.data_ptr(),
               stream_of(out));
}

void CudaBackend::clamp(const Tensor& in, double low, double high, const Tensor& out) {
  launch_clamp(in.dtype(), make_layout<2>({&out, &in}), out.data_ptr(), in.data_ptr(), low, high,
               stream_of(out));
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  launch_binary(op, a.dtype(), make_layout<3>({&out, &a, &b}), out.data_ptr(), a.data_ptr(),
                b.data_ptr(), stream_of(out));
}

void CudaBackend::where(const Tensor& condition, const Tensor& a, const Tensor& b,
                        const Tensor& out) {
  launch_where(a.dtype(), make_layout<4>({&out, &condition, &a, &b}), out.data_ptr(),
               condition.data_ptr(), a.data_ptr(), b.data_ptr(), stream_of(out));
}

void CudaBackend::reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) {
  const cudaStream_t stream = stream_of(out);
  const Tensor rows_in = dense(in, *this);
  std::int64_t row_length = 1;
  for (std::size_t d = in.dim() - static_cast<std::size_t>(reduced_dims); d < in.dim(); ++d)
    row_length *= in.shape()[d];
  const std::int64_t rows = out.numel();
  const std::size_t scratch_bytes = reduce_scratch_bytes(op, in.dtype(), rows, row_length);
  // Freed when this returns: the stream runs the kernels before any later user of the block.
  const std::shared_ptr<void> scratch =
      scratch_bytes ? allocate_on(device_of(out), scratch_bytes) : nullptr;
  launch_reduce(op, in.dtype(), rows_in.data_ptr(), rows, row_length, out.data_ptr(), scratch.get(),
                stream);
}

void CudaBackend::softmax(const Tensor& in, bool log, const Tensor& out) {
  const std::int64_t n = in.dim() == 0 ? 1 : in.shape().back();
  const std::int64_t rows = n == 0 ? 0 : in.numel() / n;
  launch_softmax(in.dtype(), in.data_ptr(), rows, n, log, out.data_ptr(), stream_of(out));
}

void CudaBackend::im2col(const Tensor& in, const Window& window, double pad_value,
                         const Tensor& out) {
  launch_im2col(in.dtype(), in.data_ptr(), geometry_of(in, window), window, pad_value,
                out.data_ptr(), stream_of(out));
}

void CudaBackend::col2im(const Tensor& cols, const Window& window, const Tensor& out) {
  launch_col2im(cols.dtype(), cols.data_ptr(), geometry_of(out, window), window, out.data_ptr(),
                stream_of(out));
}

namespace {

const void* data_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
void* mutable_data_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
const double* f64_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const double*>(t.data_ptr()) : nullptr;
}

}  // namespace

void CudaBackend::batch_norm(const BatchNormForward& pass) {
  launch_batch_norm(pass.x.dtype(), pass.layout, pass.x.data_ptr(), f64_or_null(pass.given_mean),
                    f64_or_null(pass.given_var), pass.eps, data_or_null(pass.weight),
                    data_or_null(pass.bias), data_or_null(pass.residual), pass.relu,
                    static_cast<double*>(pass.stats.data_ptr()), pass.y.data_ptr(),
                    stream_of(pass.y));
}

void CudaBackend::batch_norm_backward(const BatchNormBackward& pass) {
  // The sums are needed for the input gradient through the batch statistics and come with the
  // residual's gradient: where the caller wants none, they go to scratch memory.
  const bool sums_needed =
      pass.grad_residual.defined() || (pass.grad_x.defined() && !pass.given_statistics);
  const Tensor sums = pass.sums.defined() || !sums_needed
                          ? pass.sums
                          : Tensor::empty({2, pass.layout.channels}, DType::f64, pass.x.device());
  launch_batch_norm_backward(pass.x.dtype(), pass.layout, pass.grad.data_ptr(), pass.x.data_ptr(),
                             data_or_null(pass.output), f64_or_null(pass.stats),
                             data_or_null(pass.weight), pass.given_statistics,
                             mutable_data_or_null(pass.grad_x),
                             mutable_data_or_null(pass.grad_residual),
                             static_cast<double*>(mutable_data_or_null(sums)), stream_of(pass.x));
}

void CudaBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer,
                           const SgdUpdate& update) {
  // Anything else (odd layouts, a mismatch the composed ops will name) takes the default.
  const auto matches = [&](const Tensor& t) {
    return t.is_contiguous() && t.dtype() == param.dtype() && t.numel() == param.numel() &&
           t.device() == param.device();
  };
  const bool one_pass = matches(param) && matches(grad) && (!buffer.defined() || matches(buffer));
  if (!one_pass) return Backend::sgd_step(param, grad, buffer, update);
  launch_sgd(param.dtype(), param.data_ptr(), grad.data_ptr(), mutable_data_or_null(buffer),
             param.numel(), update, stream_of(param));
}

}  // namespace ds::cuda
