// Batch norm on the CPU in direct loops, one parallel loop over the channels per pass: with
// batch statistics the per-channel sums and then the output while the channel is in cache, with
// given (running) ones the output alone; the backward's sums and then the input gradient, the
// closed form of what autograd derives from the composed ops (two passes instead of a dozen
// temporaries).
#include "tensor/batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tensor/cpu/cpu_backend.hpp"

namespace ds::cpu {

namespace {

template <typename Fn>
void for_channels(const BatchNormLayout& l, Fn fn) {
#pragma omp parallel for schedule(static) if (l.channels > 1 && \
                                              l.batch * l.channels * l.inner >= 32768)
  for (std::int64_t c = 0; c < l.channels; ++c) fn(c);
}

// Calls fn(offset, length) for each contiguous run of channel c.
template <typename Fn>
void for_runs(const BatchNormLayout& l, std::int64_t c, Fn fn) {
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

}  // namespace

void CpuBackend::batch_norm(const BatchNormForward& pass) {
  const BatchNormLayout& l = pass.layout;
  const std::int64_t count = l.count();
  const bool given_statistics = pass.given_mean.defined();
  dispatch_floating(pass.x.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = pass.x.data<T>();
    T* py = pass.y.data<T>();
    double* mean = pass.stats.data<double>();
    double* invstd = mean + l.channels;
    double* variance = mean + 2 * l.channels;
    const T* pw = pass.weight.defined() ? pass.weight.data<T>() : nullptr;
    const T* pb = pass.bias.defined() ? pass.bias.data<T>() : nullptr;
    const double* given_mu = given_statistics ? pass.given_mean.data<double>() : nullptr;
    const double* given_sigma2 = given_statistics ? pass.given_var.data<double>() : nullptr;
    const T* pr = pass.residual.defined() ? pass.residual.data<T>() : nullptr;
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
      invstd[c] = 1.0 / std::sqrt(var + pass.eps);
      const double w = pw ? static_cast<double>(pw[c]) : 1.0;
      const T scale = static_cast<T>(invstd[c] * w);
      const T shift = static_cast<T>((pb ? static_cast<double>(pb[c]) : 0.0) - mu * invstd[c] * w);
      for_runs(l, c, [&](std::int64_t at, std::int64_t len) {
        const T* residual_run = pr ? pr + at : nullptr;
        const auto run = [&](auto then_relu, auto add_residual) {
          output_run<then_relu(), add_residual()>(px + at, residual_run, len, scale, shift,
                                                  py + at);
        };
        if (pr)
          run(std::true_type{}, std::true_type{});
        else if (pass.relu)
          run(std::true_type{}, std::false_type{});
        else
          run(std::false_type{}, std::false_type{});
      });
      variance[c] = var;
    });
  });
}

void CpuBackend::batch_norm_backward(const BatchNormBackward& pass) {
  const BatchNormLayout& l = pass.layout;
  const std::int64_t count = l.count();
  const bool given_statistics = pass.given_statistics;
  dispatch_floating(pass.x.dtype(), "batch_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = pass.x.data<T>();
    const T* pg = pass.grad.data<T>();
    const T* py = pass.output.defined() ? pass.output.data<T>() : nullptr;
    T* pgx = pass.grad_x.defined() ? pass.grad_x.data<T>() : nullptr;
    T* pgr = pass.grad_residual.defined() ? pass.grad_residual.data<T>() : nullptr;
    const double* mean = pass.stats.data<double>();
    const double* invstd = mean + l.channels;
    const T* pw = pass.weight.defined() ? pass.weight.data<T>() : nullptr;
    double* sum_gxhat = pass.sums.defined() ? pass.sums.data<double>() : nullptr;
    double* sum_g = sum_gxhat ? sum_gxhat + l.channels : nullptr;
    // The sums for the weight and bias gradients, which the input gradient needs too unless the
    // statistics were given; their pass also writes the residual's gradient.
    const bool sums = sum_gxhat || (pgx && !given_statistics) || pgr;
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
      if (sum_gxhat) {
        sum_gxhat[c] = dot * is;
        sum_g[c] = total;
      }
      if (!pgx) return;
      // dx = w * is / M * (M g - sum(g) - xhat * sum(g * xhat)) with the batch's statistics,
      // w * is * g with given ones.
      const double scale = (pw ? static_cast<double>(pw[c]) : 1.0) * is;
      const double mean_g = given_statistics ? 0.0 : total / static_cast<double>(count);
      const double proj = given_statistics ? 0.0 : dot * is * is / static_cast<double>(count);
      const T a = static_cast<T>(scale), b = static_cast<T>(-scale * proj);
      const T k = static_cast<T>(-scale * mean_g + scale * proj * mu);
      // The gradient the normalisation receives: the residual's where that was written (masked
      // already), else g, masked by y after a relu.
      const T* g_in_norm = pgr ? pgr : pg;
      const T* mask = pgr ? nullptr : py;
      for_runs(l, c, [&](std::int64_t at, std::int64_t len) {
        const T* y_run = mask ? mask + at : nullptr;
        const auto run = [&](auto after_relu, auto through_statistics) {
          input_gradient_run<after_relu(), through_statistics()>(g_in_norm + at, y_run, px + at,
                                                                 len, a, b, k, pgx + at);
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
}

}  // namespace ds::cpu
