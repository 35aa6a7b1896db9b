#pragma once
// Initialisers with PyTorch's definitions (torch.nn.init), drawing from ds::Generator.
#include <cstdint>
#include <utility>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace ds::nn::init {

// fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field.
std::pair<std::int64_t, std::int64_t> fans(const Shape& shape);

enum class FanMode { fan_in, fan_out };

// gain * sqrt(3 / fan) bounds with gain = sqrt(2 / (1 + a^2)) (leaky-ReLU gain).
void kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                      Generator& gen = default_generator());
void kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                     Generator& gen = default_generator());
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator& gen = default_generator());
void uniform_(const Tensor& t, double low, double high, Generator& gen = default_generator());
void normal_(const Tensor& t, double mean, double stddev, Generator& gen = default_generator());
// PyTorch's default for Linear and Conv2d: kaiming_uniform(a = sqrt(5)) for the weight and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias.
void default_layer_init_(const Tensor& weight, const Tensor& bias,
                         Generator& gen = default_generator());

}  // namespace ds::nn::init
