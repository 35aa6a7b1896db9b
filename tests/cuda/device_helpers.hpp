#pragma once
// Shared by the CUDA test programs: skipping without a GPU, comparing a device result with the
// CPU's, and a stand-in "device" that keeps its memory on the host (see HostAliasBackend).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda/cuda.hpp"
#include "tensor/backend.hpp"
#include "tensor/batch_norm.hpp"
#include "tensor/tensor.hpp"

namespace ds::test {

// True (after a visible WARN) when no CUDA device is usable; the test then returns early. With
// DS_REQUIRE_GPU=1 (tools/gpu_check.sh sets it) a missing device fails the test instead, so that
// a GPU run whose driver the runtime cannot use does not pass by skipping everything.
inline bool skip_without_gpu() {
  if (cuda::is_available()) return false;
  const char* required = std::getenv("DS_REQUIRE_GPU");
  if (required && std::string(required) == "1")
    FAIL("DS_REQUIRE_GPU=1 but no CUDA device is usable (cudaGetDeviceCount found none)");
  WARN("skipped: no CUDA device on this machine (cudaGetDeviceCount found none)");
  return true;
}

// Elementwise |actual - expected| <= atol + rtol * |expected|, with NaN matching NaN.
inline void require_close(const Tensor& expected, const Tensor& actual, double rtol = 1e-6,
                          double atol = 1e-6) {
  REQUIRE(expected.shape() == actual.shape());
  REQUIRE(expected.dtype() == actual.dtype());
  const auto e = expected.to(DType::f64).to(Device::cpu()).to_vector<double>();
  const auto a = actual.to(DType::f64).to(Device::cpu()).to_vector<double>();
  std::size_t mismatches = 0, first = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    const bool both_nan = std::isnan(e[i]) && std::isnan(a[i]);
    const bool same_inf = std::isinf(e[i]) && e[i] == a[i];
    if (both_nan || same_inf || std::abs(a[i] - e[i]) <= atol + rtol * std::abs(e[i])) continue;
    if (mismatches++ == 0) first = i;
  }
  INFO("first mismatch at flat index " << first << ": expected " << (e.empty() ? 0.0 : e[first])
                                       << ", got " << (a.empty() ? 0.0 : a[first]));
  REQUIRE(mismatches == 0);
}

// Bit-exact agreement (same dtype, same values, NaN matching NaN).
inline void require_identical(const Tensor& expected, const Tensor& actual) {
  require_close(expected, actual, 0.0, 0.0);
}

// A device whose memory is host memory, registered in place of the CUDA back-end for the
// duration of a test. Every primitive is the CPU kernel on a host view of the same bytes, so
// the results must equal the CPU's exactly: what this checks is the plumbing above the
// back-end (that ops, autograd, modules and optimizers keep tensors on their device), which
// needs no GPU. The real back-end is restored afterwards.
class HostAliasBackend final : public Backend {
 public:
  HostAliasBackend()
      : cpu_(backend_for(Device::cpu())),
        previous_(has_backend(DeviceKind::cuda) ? &backend_for(Device::cuda()) : nullptr) {
    register_backend(DeviceKind::cuda, this);
  }
  ~HostAliasBackend() override { register_backend(DeviceKind::cuda, previous_); }
  HostAliasBackend(const HostAliasBackend&) = delete;
  HostAliasBackend& operator=(const HostAliasBackend&) = delete;

  std::shared_ptr<void> allocate(std::size_t nbytes, Device) override {
    return cpu_.allocate(nbytes, Device::cpu());
  }
  void copy(const Tensor& src, const Tensor& dst) override { cpu_.copy(host(src), host(dst)); }
  void copy_to_host(const Tensor& src, void* out) override { cpu_.copy_to_host(host(src), out); }
  void copy_from_host(const void* in, const Tensor& dst) override {
    cpu_.copy_from_host(in, host(dst));
  }
  void fill(const Tensor& dst, double value) override { cpu_.fill(host(dst), value); }
  void unary(UnaryOp op, const Tensor& in, const Tensor& out) override {
    cpu_.unary(op, host(in), host(out));
  }
  void clamp(const Tensor& in, double low, double high, const Tensor& out) override {
    cpu_.clamp(host(in), low, high, host(out));
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override {
    cpu_.binary(op, host(a), host(b), host(out));
  }
  void where(const Tensor& c, const Tensor& a, const Tensor& b, const Tensor& out) override {
    cpu_.where(host(c), host(a), host(b), host(out));
  }
  void reduce(ReduceOp op, const Tensor& in, int dims, const Tensor& out) override {
    cpu_.reduce(op, host(in), dims, host(out));
  }
  void softmax(const Tensor& in, bool log, const Tensor& out) override {
    cpu_.softmax(host(in), log, host(out));
  }
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override {
    cpu_.matmul(host(a), host(b), host(out));
  }
  void im2col(const Tensor& in, const Window& w, double pad, const Tensor& out) override {
    cpu_.im2col(host(in), w, pad, host(out));
  }
  void col2im(const Tensor& cols, const Window& w, const Tensor& out) override {
    cpu_.col2im(host(cols), w, host(out));
  }
  void batch_norm(const BatchNormForward& pass) override {
    BatchNormForward on_host = pass;
    for (Tensor* t : {&on_host.x, &on_host.weight, &on_host.bias, &on_host.given_mean,
                      &on_host.given_var, &on_host.residual, &on_host.stats, &on_host.y})
      *t = host_or_undefined(*t);
    cpu_.batch_norm(on_host);
  }
  void batch_norm_backward(const BatchNormBackward& pass) override {
    BatchNormBackward on_host = pass;
    for (Tensor* t : {&on_host.grad, &on_host.x, &on_host.output, &on_host.stats, &on_host.weight,
                      &on_host.grad_x, &on_host.grad_residual, &on_host.sums})
      *t = host_or_undefined(*t);
    cpu_.batch_norm_backward(on_host);
  }

 private:
  // The same bytes seen as a CPU tensor (not owning them: `t` keeps them alive for the call).
  static Tensor host(const Tensor& t) {
    if (t.device().is_cpu()) FAIL("a CPU tensor reached the device back-end: " << describe(t));
    Storage bytes(std::shared_ptr<void>(t.storage().data(), [](void*) {}), t.storage().nbytes(),
                  Device::cpu());
    return Tensor::from_storage(bytes, t.shape(), t.strides(), t.offset(), t.dtype());
  }

  static Tensor host_or_undefined(const Tensor& t) { return t.defined() ? host(t) : Tensor(); }

  Backend& cpu_;
  Backend* previous_;
};

}  // namespace ds::test
