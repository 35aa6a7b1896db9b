#include "optim/moments.hpp"

#include <cmath>
#include <type_traits>

#include "optim/state_buffer.hpp"
#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

// One element's arithmetic, shared by the fused loops: the moments' update
// (m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2) and adaptive_step's change
// (step * m / (sqrt(v) / root + eps), dividing by the root only when Divided).
template <typename T>
struct MomentRates {
  T b1, c1, b2, c2;
  explicit MomentRates(const ParamGroup& group)
      : b1(static_cast<T>(group.beta1)),
        c1(static_cast<T>(1.0 - group.beta1)),
        b2(static_cast<T>(group.beta2)),
        c2(static_cast<T>(1.0 - group.beta2)) {}
  void update(T& m, T& v, T g) const {
    m = m * b1 + g * c1;
    v = v * b2 + g * g * c2;
  }
};

template <bool Divided, typename T>
T adaptive_change(T m, T v, T root, T eps, T step) {
  T denom = std::sqrt(v);
  if constexpr (Divided) denom = denom / root;
  return m / (denom + eps) * step;
}

}  // namespace

bool fusable(std::initializer_list<const Tensor*> tensors) {
  const Tensor& first = **tensors.begin();
  for (const Tensor* t : tensors)
    if (!t->device().is_cpu() || !is_floating(t->dtype()) || t->dtype() != first.dtype() ||
        t->numel() != first.numel() || !t->is_contiguous())
      return false;
  return true;
}

Moments update_moments(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                       ParamState& state) {
  const Tensor& exp_avg = state_buffer(state, "exp_avg", param);
  const Tensor& exp_avg_sq = state_buffer(state, "exp_avg_sq", param);
  if (fusable({&exp_avg, &exp_avg_sq, &grad})) {
    dispatch_floating(grad.dtype(), "update_moments", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* m = exp_avg.data<T>();
      T* v = exp_avg_sq.data<T>();
      const T* g = grad.data<T>();
      const MomentRates<T> rates(group);
      for_ranges(grad.numel(), [=](std::int64_t begin, std::int64_t end) {
        T* __restrict pm = m;
        T* __restrict pv = v;
        const T* __restrict pg = g;
#pragma omp simd
        for (std::int64_t i = begin; i < end; ++i) rates.update(pm[i], pv[i], pg[i]);
      });
    });
    exp_avg.storage().bump_version();
    exp_avg_sq.storage().bump_version();
  } else {
    exp_avg.mul_(group.beta1).add_(grad, 1.0 - group.beta1);
    exp_avg_sq.mul_(group.beta2).add_(grad * grad, 1.0 - group.beta2);
  }
  return {exp_avg, exp_avg_sq};
}

void adaptive_step(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   double root, double eps, double step) {
  // Dividing by a root of 1 (RAdam) is exact, so it is skipped: it cost 40% of the fused loop.
  const bool divide = root != 1.0;
  if (!fusable({&param, &exp_avg, &exp_avg_sq})) {
    Tensor denom = sqrt(exp_avg_sq);
    if (divide) denom = denom / root;
    denom.add_(eps);
    param.add_(exp_avg / denom, step);
    return;
  }
  dispatch_floating(param.dtype(), "adaptive_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = param.data<T>();
    const T* m = exp_avg.data<T>();
    const T* v = exp_avg_sq.data<T>();
    const T root_t = static_cast<T>(root), eps_t = static_cast<T>(eps);
    const T step_t = static_cast<T>(step);
    const auto update = [&](auto divided) {
      for_ranges(param.numel(), [=](std::int64_t begin, std::int64_t end) {
        T* __restrict pp = p;
        const T* __restrict pm = m;
        const T* __restrict pv = v;
#pragma omp simd
        for (std::int64_t i = begin; i < end; ++i)
          pp[i] = pp[i] +
                  adaptive_change<decltype(divided)::value>(pm[i], pv[i], root_t, eps_t, step_t);
      });
    };
    if (divide)
      update(std::true_type{});
    else
      update(std::false_type{});
  });
  param.storage().bump_version();
}

void update_moments_and_step(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                             ParamState& state, const MomentStep& rule) {
  const Tensor& exp_avg = state_buffer(state, "exp_avg", param);
  const Tensor& exp_avg_sq = state_buffer(state, "exp_avg_sq", param);
  if (!fusable({&param, &exp_avg, &exp_avg_sq, &grad})) {
    const Moments moments = update_moments(group, param, grad, state);
    if (rule.adaptive)
      adaptive_step(param, moments.exp_avg, moments.exp_avg_sq, rule.root, rule.eps, rule.step);
    else
      param.add_(moments.exp_avg, rule.step);
    return;
  }
  dispatch_floating(param.dtype(), "update_moments_and_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = param.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    const T* g = grad.data<T>();
    const MomentRates<T> rates(group);
    const T root = static_cast<T>(rule.root), eps = static_cast<T>(rule.eps);
    const T step = static_cast<T>(rule.step);
    // Adaptive (with or without dividing by the root, as adaptive_step) or plain; one
    // branch-free instantiation each.
    const auto update = [&](auto adaptive, auto divided) {
      for_ranges(param.numel(), [=](std::int64_t begin, std::int64_t end) {
        T* __restrict pp = p;
        T* __restrict pm = m;
        T* __restrict pv = v;
        const T* __restrict pg = g;
#pragma omp simd
        for (std::int64_t i = begin; i < end; ++i) {
          T new_m = pm[i], new_v = pv[i];
          rates.update(new_m, new_v, pg[i]);
          pm[i] = new_m;
          pv[i] = new_v;
          if constexpr (decltype(adaptive)::value)
            pp[i] =
                pp[i] + adaptive_change<decltype(divided)::value>(new_m, new_v, root, eps, step);
          else
            pp[i] = pp[i] + new_m * step;
        }
      });
    };
    if (!rule.adaptive)
      update(std::false_type{}, std::false_type{});
    else if (rule.root != 1.0)
      update(std::true_type{}, std::true_type{});
    else
      update(std::true_type{}, std::false_type{});
  });
  exp_avg.storage().bump_version();
  exp_avg_sq.storage().bump_version();
  param.storage().bump_version();
}

}  // namespace ds::optim
