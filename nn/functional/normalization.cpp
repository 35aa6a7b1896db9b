// Batch normalisation: on the CPU in direct loops with a closed-form backward (the terms through
// the batch mean and variance included), elsewhere composed of differentiable ops.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "autograd/function.hpp"
#include "autograd/grad_mode.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

namespace {

// Batch norm on the CPU in direct loops: with batch statistics one pass for the per-channel sums
// and one for the output, with given (running) ones the output's pass alone, and a backward that
// is the closed form of what autograd derives from the composed version (two passes instead of
// a dozen temporaries).
struct Layout {
  std::int64_t batch, channels, inner;  // x viewed as [batch, channels, inner]
};

template <typename Fn>
void for_channels(const Layout& l, Fn fn) {
#pragma omp parallel for schedule(static) if (l.channels > 1 && \
                                              l.batch * l.channels * l.inner >= 32768)
  for (std::int64_t c = 0; c < l.channels; ++c) fn(c);
}

// Calls fn(offset, length) for each contiguous run of channel c.
template <typename Fn>
void for_runs(const Layout& l, std::int64_t c, Fn fn) {
  for (std::int64_t n = 0; n < l.batch; ++n) fn((n * l.channels + c) * l.inner, l.inner);
}

double sum_lanes(const double (&part)[8]) {
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// sum(x - reference) and sum((x - reference)^2) over one run, added to total and squares.
// Eight partial sums let the loop vectorise; a double per lane keeps long sums exact enough.
template <typename T>
void run_sum_and_squares(const T* p, std::int64_t length, double reference, double& total,
                         double& squares) {
  double sums[8] = {}, square_sums[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= length; i += 8)
    for (int k = 0; k < 8; ++k) {
      const double d = static_cast<double>(p[i + k]) - reference;
      sums[k] += d;
      square_sums[k] += d * d;
    }
  for (; i < length; ++i) {
    const double d = static_cast<double>(p[i]) - reference;
    sums[0] += d;
    square_sums[0] += d * d;
  }
  total += sum_lanes(sums);
  squares += sum_lanes(square_sums);
}

// The output gradient that reaches the normalisation: g, or with a ReLU after it (AfterRelu),
// g where the output y is positive and 0 elsewhere, as relu's backward.
template <bool AfterRelu, typename T>
T gradient_in(const T* g, const T* y, std::int64_t i) {
  if constexpr (AfterRelu) return y[i] > T(0) ? g[i] : T(0);
  return g[i];
}

// sum(g * (x - mu)) and sum(g) over one run, g as gradient_in gives it, with run_sum_and_squares'
// eight partial sums. (An `omp simd` reduction indexing the captured pointers compiled to
// gathers, at a quarter of the speed; the loops below index local pointers for the same reason.)
template <bool AfterRelu, typename T>
void run_dot_and_sum(const T* g, const T* y, const T* x, std::int64_t length, double mu,
                     double& dot, double& total) {
  double dots[8] = {}, sums[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= length; i += 8)
    for (int k = 0; k < 8; ++k) {
      const double gv = static_cast<double>(gradient_in<AfterRelu>(g, y, i + k));
      dots[k] += gv * (static_cast<double>(x[i + k]) - mu);
      sums[k] += gv;
    }
  for (; i < length; ++i) {
    const double gv = static_cast<double>(gradient_in<AfterRelu>(g, y, i));
    dots[0] += gv * (static_cast<double>(x[i]) - mu);
    sums[0] += gv;
  }
  dot += sum_lanes(dots);
  total += sum_lanes(sums);
}

// One run of the gradient after a relu, g masked by the output y: a residual's gradient. (In a
// loop of its own: written inside run_dot_and_sum's, it kept that loop from vectorising.)
template <typename T>
void masked_gradient_run(const T* g, const T* y, std::int64_t length, T* out) {
#pragma omp simd
  for (std::int64_t i = 0; i < length; ++i) out[i] = gradient_in<true>(g, y, i);
}

// One run of the input gradient: a * g, g as gradient_in gives it, and with the batch's statistics
// (ThroughStatistics) + b * x + k, the terms through the batch mean and variance. With given
// statistics x does not enter: an infinite x must not make the gradient NaN through 0 * x.
template <bool AfterRelu, bool ThroughStatistics, typename T>
void input_gradient_run(const T* g, const T* y, const T* x, std::int64_t length, T a, T b, T k,
                        T* out) {
#pragma omp simd
  for (std::int64_t i = 0; i < length; ++i) {
    T value = a * gradient_in<AfterRelu>(g, y, i);
    if constexpr (ThroughStatistics) value = value + b * x[i] + k;
    out[i] = value;
  }
}

// One run of the output: x * scale + shift, with AddResidual + the residual's value, with
// ThenRelu clamped at 0.
template <bool ThenRelu, bool AddResidual, typename T>
void output_run(const T* x, const T* residual, std::int64_t length, T scale, T shift, T* out) {
#pragma omp simd
  for (std::int64_t i = 0; i < length; ++i) {
    T z = x[i] * scale + shift;
    if constexpr (AddResidual) z = z + residual[i];
    if constexpr (ThenRelu) z = z < T(0) ? T(0) : z;
    out[i] = z;
  }
}

// What follows the normalisation in the same passes: nothing, a relu, or a residual added and
// then a relu (a residual block's ending).
struct Ending {
  bool relu = false;
  Tensor residual;  // defined only with relu
};

// With the batch's statistics, or at inference the running ones (given_statistics: then the
// output is x * scale + shift per channel, and its gradient has no terms through the
// statistics). With a relu in the ending, the output is clamped as it is written, and backward
// masks the gradient by the saved output as it reads it; the residual's gradient is that
// masked gradient.
Tensor batch_norm_direct(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight, const Tensor& bias, bool training, double momentum,
                         double eps, const Ending& ending) {
  const Tensor x = x_in.detach().contiguous();
  const Tensor residual =
      ending.residual.defined() ? ending.residual.detach().contiguous() : Tensor();
  const Layout l{x.shape()[0], x.shape()[1], x.dim() == 4 ? x.shape()[2] * x.shape()[3] : 1};
  const std::int64_t count = l.batch * l.inner;
  const bool given_statistics = !training && running_mean.defined();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  // Per channel: mean, 1/sqrt(var + eps) (both kept for backward) and the variance (the batch's,
  // biased, for the running statistics' update).
  Tensor stats = Tensor::empty({3, l.channels}, DType::f64);
  const Tensor given_mean =
      given_statistics ? running_mean.detach().to(DType::f64).contiguous() : Tensor();
  const Tensor given_var =
      given_statistics ? running_var.detach().to(DType::f64).contiguous() : Tensor();
  dispatch_floating(x.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    double* mean = stats.data<double>();
    double* invstd = mean + l.channels;
    double* variance = mean + 2 * l.channels;
    const Tensor w = weight.defined() ? weight.detach().to(DType::f64).contiguous() : Tensor();
    const Tensor b = bias.defined() ? bias.detach().to(DType::f64).contiguous() : Tensor();
    const double* pw = w.defined() ? w.data<double>() : nullptr;
    const double* pb = b.defined() ? b.data<double>() : nullptr;
    // (Taken here, not in the parallel loop, where a failing check could not throw.)
    const double* given_mu = given_statistics ? given_mean.data<double>() : nullptr;
    const double* given_sigma2 = given_statistics ? given_var.data<double>() : nullptr;
    const T* pr = residual.defined() ? residual.data<T>() : nullptr;
    for_channels(l, [&](std::int64_t c) {
      double mu, var;
      if (given_statistics) {
        mu = given_mu[c];
        var = given_sigma2[c];
      } else {
        // One pass for both sums, of the values less the channel's first one, d = x - x0: x is
        // read once less than with the mean first. In double, the cancellation in E[d^2] -
        // E[d]^2 costs a relative error of about 1e-16 * E[d^2] / var, far below float's
        // resolution unless x0 lies some 10^4 standard deviations from the mean.
        const double reference = count > 0 ? static_cast<double>(px[c * l.inner]) : 0.0;
        double total = 0, squares = 0;
        for_runs(l, c, [&](std::int64_t at, std::int64_t len) {
          run_sum_and_squares(px + at, len, reference, total, squares);
        });
        const double shift_mean = total / static_cast<double>(count);
        mu = reference + shift_mean;
        // (Rounding can leave a tiny negative; an infinite input leaves NaN, which stays.)
        var = std::max(squares / static_cast<double>(count) - shift_mean * shift_mean, 0.0);
      }
      mean[c] = mu;
      invstd[c] = 1.0 / std::sqrt(var + eps);
      const T scale = static_cast<T>(invstd[c] * (pw ? pw[c] : 1.0));
      const T shift = static_cast<T>((pb ? pb[c] : 0.0) - mu * invstd[c] * (pw ? pw[c] : 1.0));
      for_runs(l, c, [&](std::int64_t at, std::int64_t len) {
        const T* residual_run = pr ? pr + at : nullptr;
        const auto run = [&](auto then_relu, auto add_residual) {
          output_run<then_relu(), add_residual()>(px + at, residual_run, len, scale, shift,
                                                  py + at);
        };
        if (pr)
          run(std::true_type{}, std::true_type{});
        else if (ending.relu)
          run(std::true_type{}, std::false_type{});
        else
          run(std::false_type{}, std::false_type{});
      });
      variance[c] = var;
    });
    if (training && running_mean.defined()) {
      NoGradGuard no_grad;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      const Tensor batch_mean = stats.select(0, 0).to(running_mean.dtype());
      const Tensor batch_var = stats.select(0, 2).to(running_var.dtype());
      running_mean.mul_(1 - momentum).add_(batch_mean, momentum);
      running_var.mul_(1 - momentum).add_(batch_var, momentum * unbias);
    }
  });
  const char* name = residual.defined() ? "batch_norm_add_relu"
                     : ending.relu      ? "batch_norm_relu"
                                        : "batch_norm";
  y = y.reshape(x_in.shape());
  return autograd::record(
      name, y, {x_in, weight, bias, ending.residual},
      [x, stats, l, name, given_statistics, sw = autograd::SavedTensor(weight),
       sy = ending.relu ? autograd::SavedTensor(y) : autograd::SavedTensor()](
          const Tensor& g_in, const std::vector<bool>& needs) {
        const Tensor g = g_in.contiguous();
        const Tensor& weight = sw.get(name);
        const Tensor& output = sy.get(name);
        Tensor gx = needs[0] ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
        Tensor gr = needs[3] ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
        Tensor gw = Tensor::empty({l.channels}, DType::f64);
        Tensor gb = Tensor::empty({l.channels}, DType::f64);
        const std::int64_t count = l.batch * l.inner;
        dispatch_floating(x.dtype(), "batch_norm backward", [&](auto tag) {
          using T = typename decltype(tag)::type;
          const T* px = x.data<T>();
          const T* pg = g.data<T>();
          const T* py = output.defined() ? output.data<T>() : nullptr;
          T* pgx = gx.defined() ? gx.data<T>() : nullptr;
          T* pgr = gr.defined() ? gr.data<T>() : nullptr;
          const double* mean = stats.data<double>();
          const double* invstd = mean + l.channels;
          const Tensor w = weight.defined() ? weight.to(DType::f64).contiguous() : Tensor();
          const double* pw = w.defined() ? w.data<double>() : nullptr;
          double* sum_gxhat = gw.data<double>();
          double* sum_g = gb.data<double>();
          // The sums for the weight and bias gradients, which the input gradient needs too
          // unless the statistics were given; their pass also writes the residual's gradient.
          const bool sums = needs[1] || needs[2] || (pgx && !given_statistics) || pgr;
          for_channels(l, [&](std::int64_t c) {
            const double mu = mean[c], is = invstd[c];
            double dot = 0, total = 0;  // sum(g * (x - mu)) and sum(g)
            if (sums)
              for_runs(l, c, [&](std::int64_t at, std::int64_t len) {
                if (pgr) {
                  // The residual's gradient, then the sums from it while it is in cache.
                  masked_gradient_run(pg + at, py + at, len, pgr + at);
                  run_dot_and_sum<false, T>(pgr + at, nullptr, px + at, len, mu, dot, total);
                } else if (py) {
                  run_dot_and_sum<true>(pg + at, py + at, px + at, len, mu, dot, total);
                } else {
                  run_dot_and_sum<false, T>(pg + at, nullptr, px + at, len, mu, dot, total);
                }
              });
            sum_gxhat[c] = dot * is;
            sum_g[c] = total;
            if (!pgx) return;
            // dx = w * is / M * (M g - sum(g) - xhat * sum(g * xhat)) with the batch's
            // statistics, w * is * g with given ones.
            const double scale = (pw ? pw[c] : 1.0) * is;
            const double mean_g = given_statistics ? 0.0 : total / static_cast<double>(count);
            const double proj = given_statistics ? 0.0 : dot * is * is / static_cast<double>(count);
            const T a = static_cast<T>(scale), b = static_cast<T>(-scale * proj);
            const T k = static_cast<T>(-scale * mean_g + scale * proj * mu);
            // The gradient the normalisation receives: the residual's where that was written
            // (masked already), else g, masked by y after a relu.
            const T* g_in_norm = pgr ? pgr : pg;
            const T* mask = pgr ? nullptr : py;
            for_runs(l, c, [&](std::int64_t at, std::int64_t len) {
              const T* y_run = mask ? mask + at : nullptr;
              const auto run = [&](auto after_relu, auto through_statistics) {
                input_gradient_run<after_relu(), through_statistics()>(
                    g_in_norm + at, y_run, px + at, len, a, b, k, pgx + at);
              };
              if (mask && given_statistics)
                run(std::true_type{}, std::false_type{});
              else if (mask)
                run(std::true_type{}, std::true_type{});
              else if (given_statistics)
                run(std::false_type{}, std::false_type{});
              else
                run(std::false_type{}, std::true_type{});
            });
          });
        });
        return std::vector<Tensor>{gx.defined() ? gx.reshape(g_in.shape()) : Tensor(),
                                   needs[1] ? gw.to(x.dtype()) : Tensor(),
                                   needs[2] ? gb.to(x.dtype()) : Tensor(),
                                   gr.defined() ? gr.reshape(g_in.shape()) : Tensor()};
      });
}

Tensor normalize(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                 const Tensor& weight, const Tensor& bias, bool training, double momentum,
                 double eps, const Ending& ending) {
  if (x.dim() != 2 && x.dim() != 4)
    fail("batch_norm: expects [N, C] or [N, C, H, W], got shape ", x.shape());
  const Tensor& residual = ending.residual;
  if (residual.defined() && (residual.shape() != x.shape() || residual.dtype() != x.dtype() ||
                             residual.device() != x.device()))
    fail("batch_norm_add_relu: the residual (", residual.shape(), ", ", residual.dtype(), ", ",
         residual.device(), ") must match the input (", x.shape(), ", ", x.dtype(), ", ",
         x.device(), ")");
  const std::int64_t channels = x.shape()[1];
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
    if (t->defined() && t->shape() != Shape{channels})
      fail("batch_norm: per-channel tensor of shape ", t->shape(), " for ", channels,
           " channels (input ", x.shape(), ")");
  // As PyTorch: the running statistics are buffers, which take no gradient.
  if ((running_mean.defined() && running_mean.requires_grad()) ||
      (running_var.defined() && running_var.requires_grad()))
    fail("batch_norm: the running statistics require grad; they are buffers, detach them");
  Shape channel_shape(x.dim(), 1);
  channel_shape[1] = channels;

  const std::int64_t count = channels > 0 ? x.numel() / channels : 0;
  if (count < 2 && training)
    fail("batch_norm: training needs more than one value per channel, got input ", x.shape());
  if (x.device().is_cpu() && is_floating(x.dtype()))
    return batch_norm_direct(x, running_mean, running_var, weight, bias, training, momentum, eps,
                             ending);
  // Off the CPU or in other dtypes, composed of differentiable ops.
  const auto end = [&](Tensor y) {
    if (residual.defined()) y = y + residual;
    return ending.relu ? relu(y) : y;
  };
  if (!training && running_mean.defined()) {
    // Inference folds the statistics into a per-channel scale and shift, as PyTorch does:
    // y = x * (weight / sqrt(var + eps)) + (bias - mean * scale).
    Tensor scale = 1.0 / sqrt(running_var + eps);
    if (weight.defined()) scale = scale * weight;
    // A copy of the mean: the product keeps its operands for the gradient, and a later training
    // step updates the running statistics in place.
    Tensor shift = -(running_mean.clone() * scale);
    if (bias.defined()) shift = shift + bias;
    return end(x * scale.reshape(channel_shape) + shift.reshape(channel_shape));
  }
  // Batch statistics.
  const std::vector<std::int64_t> dims =
      x.dim() == 2 ? std::vector<std::int64_t>{0} : std::vector<std::int64_t>{0, 2, 3};
  const Tensor mu = mean(x, dims, /*keepdim=*/true);
  const Tensor sigma2 = var(x, dims, /*keepdim=*/true, /*correction=*/0);
  if (training && running_mean.defined()) {
    NoGradGuard no_grad;
    const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    running_mean.mul_(1 - momentum).add_(mu.reshape({channels}), momentum);
    running_var.mul_(1 - momentum).add_(sigma2.reshape({channels}), momentum * unbias);
  }
  Tensor y = (x - mu) / sqrt(sigma2 + eps);
  if (weight.defined()) y = y * weight.reshape(channel_shape);
  if (bias.defined()) y = y + bias.reshape(channel_shape);
  return end(y);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  return normalize(x, running_mean, running_var, weight, bias, training, momentum, eps, {});
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps) {
  return normalize(x, running_mean, running_var, weight, bias, training, momentum, eps,
                   {.relu = true, .residual = Tensor()});
}

Tensor batch_norm_add_relu(const Tensor& x, const Tensor& residual, const Tensor& running_mean,
                           const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                           bool training, double momentum, double eps) {
  if (!residual.defined()) fail("batch_norm_add_relu: the residual is undefined");
  return normalize(x, running_mean, running_var, weight, bias, training, momentum, eps,
                   {.relu = true, .residual = residual});
}

}  // namespace ds::nn::functional
