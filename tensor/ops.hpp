#pragma once
// Differentiable tensor operations. Each family lives in one file under tensor/ops/ with its
// forward and backward side by side. Binary ops broadcast as NumPy does; both operands must
// have the same dtype (a scalar operand takes the tensor's dtype).
#include <cstdint>
#include <optional>
#include <vector>

#include "tensor/backend.hpp"
#include "tensor/tensor.hpp"

namespace ds {

// ---- arithmetic (tensor/ops/arithmetic.cpp)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor pow(const Tensor& base, double exponent);
Tensor pow(double base, const Tensor& exponent);   // base 2 runs the exact exp2 kernel
Tensor maximum(const Tensor& a, const Tensor& b);  // ties share the gradient equally
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---- unary math (tensor/ops/unary.cpp); floor, round and sign have zero gradient
Tensor exp(const Tensor& x);
Tensor exp2(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor round(const Tensor& x);  // half to even, as std::nearbyint
Tensor clamp(const Tensor& x, std::optional<double> low, std::optional<double> high);
Tensor relu(const Tensor& x);

// ---- comparisons and selection (tensor/ops/compare.cpp); comparisons return u8 0/1
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// ---- reductions (tensor/ops/reduction.cpp); an empty dims list means every dim
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
// Gradient shared equally among tied maxima (as torch.amax).
Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
// i32 indices; with no dim, the index into the flattened tensor.
Tensor argmax(const Tensor& x, std::optional<std::int64_t> dim = std::nullopt,
              bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<std::int64_t> dim = std::nullopt,
              bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false,
           std::int64_t correction = 1);
// Reduces a broadcast gradient back to `shape` (sums the broadcast dims).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- softmax family (tensor/ops/softmax.cpp), numerically stable
Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor log_softmax(const Tensor& x, std::int64_t dim);

// ---- matrix products (tensor/ops/matmul.cpp): 2-D @ 2-D, and batched 3-D @ 3-D or 2-D
// with batch broadcasting; 1-D operands are treated as a row (left) or a column (right).
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- joining (tensor/ops/join.cpp): all tensors share dtype, device and the other dims
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim);

// ---- sliding windows (tensor/ops/unfold.cpp), the building block of convolution and pooling
// unfold: x [N, C, H, W] -> [N, C * kh * kw, out_h * out_w] (padding reads pad_value);
// fold is its adjoint: it sums the columns back into [N, C, height, width].
Tensor unfold(const Tensor& x, const Window& window, double pad_value = 0.0);
Tensor fold(const Tensor& columns, const Window& window, std::int64_t height, std::int64_t width);
// Refuses a window no convolution or pooling can take (a kernel, stride or dilation below 1,
// negative padding), naming `op`.
void check_window(const Window& window, const char* op);
// The positions (out_h * out_w) of a window checked as check_window does over a height x width
// input; a window that does not fit is refused, naming `op`.
std::int64_t window_positions(const Window& window, std::int64_t height, std::int64_t width,
                              const char* op);
// convolve: x [N, C, H, W] with weight [O, C * kh * kw] -> [N, O, out_h * out_w], the value of
// matmul(weight, unfold(x, window)) without the unfolded batch in memory (back-ends work image
// by image, and backward unfolds the saved input again).
Tensor convolve(const Tensor& x, const Tensor& weight, const Window& window);
// convolve's gradients for g [N, O, out_h * out_w]: {grad_x, grad_weight}, each only where
// `needs` asks; its backward, and that of forwards computed another way (the shift kernel).
std::vector<Tensor> convolve_gradients(const Tensor& x, const Tensor& weight, const Tensor& g,
                                       const Window& window, const std::vector<bool>& needs);
// depthwise_convolve: x [N, C, H, W] with weight [C * M, kh * kw] -> [N, C * M, out_h * out_w],
// output channel o the window of input channel o / M against weight row o (a convolution with
// C groups), and its gradients as for convolve.
Tensor depthwise_convolve(const Tensor& x, const Tensor& weight, const Window& window);
std::vector<Tensor> depthwise_convolve_gradients(const Tensor& x, const Tensor& weight,
                                                 const Tensor& g, const Window& window,
                                                 const std::vector<bool>& needs);

}  // namespace ds
