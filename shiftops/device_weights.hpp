#pragma once
// Shift kernels on devices other than the CPU. A device module that has them (cuda/) installs
// an uploader for its device kind when it is linked in, as it installs its tensor back-end;
// the shift layers and shift_linear / shift_conv2d then run that device's tensors through the
// weights it uploads. Without one, a device tensor gets an error naming the device.
#include <cstdint>
#include <functional>
#include <memory>

#include "nn/functional.hpp"
#include "shiftops/packed.hpp"
#include "shiftops/quantize.hpp"
#include "tensor/device.hpp"

namespace ds::shift {

// A layer's packed weights resident on one device, with the kernels that run on them: f32
// tensors on that device in and out, exactly as shift_linear / shift_conv2d on the CPU.
class DeviceWeights {
 public:
  virtual ~DeviceWeights() = default;
  virtual Tensor linear(const Tensor& x, const ActivationBits& bits) const = 0;
  virtual Tensor conv2d(const Tensor& x, std::int64_t kernel_h, std::int64_t kernel_w,
                        const nn::functional::Conv2dParams& params,
                        const ActivationBits& bits) const = 0;
};

using WeightUploader =
    std::function<std::shared_ptr<const DeviceWeights>(const PackedWeights&, Device)>;

// Installs the uploader of a device kind (an empty one removes it) and returns the one it
// replaces, so that a stand-in can put the real one back.
WeightUploader register_weight_uploader(DeviceKind kind, WeightUploader uploader);

// `weights` copied to `device` by its kind's uploader; `op` names the caller in the error when
// the kind has none (a build without CUDA).
std::shared_ptr<const DeviceWeights> upload_weights(const PackedWeights& weights, Device device,
                                                    const char* op);

}  // namespace ds::shift
