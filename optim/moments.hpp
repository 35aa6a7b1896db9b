#pragma once
// The first and second moment estimates shared by Adam, RAdam and Ranger, and the fused
// element loops of the optimizers' updates (internal header).
#include <omp.h>

#include <cstdint>
#include <initializer_list>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct Moments {
  Tensor exp_avg;     // m
  Tensor exp_avg_sq;  // v
};

// m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g^2 in place, both starting from zero.
Moments update_moments(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                       ParamState& state);

// param += step * m / (sqrt(v) / root + eps): Adam's update (root: the square root of its second
// bias correction) and RAdam's rectified one (root 1: no division). One fused loop where the
// tensors allow it, else tensor ops in the same order.
void adaptive_step(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   double root, double eps, double step);

// How the parameter moves once the moments are updated: adaptive_step's rule, or (RAdam before
// its variance is rectified) param += step * m.
struct MomentStep {
  bool adaptive;
  double root, eps, step;
};

// update_moments and then the step, in one loop over param, grad and both moments where they
// allow it (the step reads the new moments while they are in registers, not in a second pass
// over memory); otherwise the two calls. The same arithmetic in the same order either way.
void update_moments_and_step(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                             ParamState& state, const MomentStep& rule);

// Whether an update can run as one fused loop over raw memory: every tensor contiguous, on the
// CPU, floating and of the first one's dtype and size. Otherwise the optimizers compose tensor
// ops (other devices, odd layouts), with the same arithmetic in the same order (up to the FMAs
// the compiler may form in the fused loops).
bool fusable(std::initializer_list<const Tensor*> tensors);

// Calls body(begin, end) over [0, n) in one chunk per thread when n is large enough to pay
// for waking them.
template <typename Body>
void for_ranges(std::int64_t n, Body&& body) {
  constexpr std::int64_t kGrain = std::int64_t{1} << 16;
  const int chunks = n >= kGrain ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int c = 0; c < chunks; ++c) body(n * c / chunks, n * (c + 1) / chunks);
}

}  // namespace ds::optim
