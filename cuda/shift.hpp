#pragma once
// The shift kernels on a CUDA device (docs/cuda.md), free of CUDA headers: the exact integer
// result of the CPU kernels (shiftops/kernel.hpp) from packed weights uploaded once.
#include <cstdint>
#include <memory>

#include "shiftops/device_weights.hpp"
#include "shiftops/kernel.hpp"
#include "tensor/tensor.hpp"

namespace ds::cuda {

// A layer's packed weights (codes and bias) resident on the device current at construction.
// As shift::DeviceWeights they are what the shift layers use for CUDA tensors.
class DeviceShiftWeights final : public shift::DeviceWeights {
 public:
  explicit DeviceShiftWeights(const shift::PackedWeights& weights);
  Tensor linear(const Tensor& x, const shift::ActivationBits& bits) const override;
  Tensor conv2d(const Tensor& x, std::int64_t kernel_h, std::int64_t kernel_w,
                const nn::functional::Conv2dParams& params,
                const shift::ActivationBits& bits) const override;
  // The host copy the device copy was made from (shapes, K, code width, bias grid).
  const shift::PackedWeights& packed() const { return packed_; }
  int device() const { return device_; }
  const std::uint8_t* device_codes() const;
  const std::int64_t* device_bias() const;  // null without a bias

 private:
  shift::PackedWeights packed_;
  int device_;
  std::shared_ptr<void> codes_, bias_;
};

// Exactly shift::linear_int / conv2d_int, computed on the device: x and y are host arrays,
// copied to the device and back (for tests and one-off calls).
void linear_int(const DeviceShiftWeights& weights, const std::int32_t* x, std::int64_t batch,
                const shift::ActivationFormat& format, std::int64_t* y);
void conv2d_int(const DeviceShiftWeights& weights, const std::int32_t* x,
                const shift::ConvGeometry& geometry, const shift::ActivationFormat& format,
                std::int64_t* y);

// f32 tensors on the weights' device in and out, as shift::shift_linear / shift_conv2d on the
// CPU: x becomes clamp(floor(x * 2^F)) in the signed I + F bit format, the result y / 2^F.
Tensor shift_linear(const Tensor& x, const DeviceShiftWeights& weights,
                    const shift::ActivationBits& bits);
Tensor shift_conv2d(const Tensor& x, const DeviceShiftWeights& weights, std::int64_t kernel_h,
                    std::int64_t kernel_w, const nn::functional::Conv2dParams& params,
                    const shift::ActivationBits& bits);

// The kernel alone, on inputs already in the layer's fixed-point format (what a network that
// keeps its activations as integers between shift layers would launch): x_fixed i32 [..., cols]
// on the weights' device, its values within `format`; the result y / 2^fraction_bits as f32
// [..., rows]. No quantisation, no NaN check, no wait for the device.
Tensor shift_linear_fixed(const Tensor& x_fixed, const DeviceShiftWeights& weights,
                          const shift::ActivationFormat& format, int fraction_bits);

// The shift layers' uploader for CUDA tensors (shift::register_weight_uploader): the weights
// on `device`, which must be the current device.
std::shared_ptr<const shift::DeviceWeights> upload_shift_weights(
    const shift::PackedWeights& weights, Device device);

}  // namespace ds::cuda
