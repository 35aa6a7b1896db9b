#include "optim/sgd.hpp"

#include <type_traits>
#include <utility>

#include "optim/moments.hpp"
#include "tensor/backend.hpp"

namespace ds::optim {

namespace {

ParamGroup sgd_defaults(const SgdOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.momentum = options.momentum;
  return group;
}

// Calls fn with std::true_type or std::false_type.
template <typename Fn>
void with_flag(bool flag, Fn&& fn) {
  if (flag)
    fn(std::true_type{});
  else
    fn(std::false_type{});
}

// The update of a range of elements, in the arithmetic order of the tensor-op version below.
template <typename T>
struct SgdStep {
  T* p;
  const T* g;
  T* buf;
  T wd, momentum, keep, step;

  template <bool Decay, bool Momentum, bool First, bool Nesterov>
  void run(std::int64_t begin, std::int64_t end) const {
    // Locals, restrict-qualified: the stores must not make the compiler reload the members
    // or assume the arrays overlap, or the loop stays scalar.
    T* __restrict p = this->p;
    const T* __restrict g = this->g;
    T* __restrict buf = this->buf;
    const T wd = this->wd, momentum = this->momentum, keep = this->keep, step = this->step;
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) {
      T d = Decay ? g[i] + p[i] * wd : g[i];
      if constexpr (Momentum) {
        buf[i] = First ? d : buf[i] * momentum + d * keep;
        d = Nesterov ? d + buf[i] * momentum : buf[i];
      }
      p[i] = p[i] + d * step;
    }
  }
};

}  // namespace

SGD::SGD(std::vector<NamedParameter> params, const SgdOptions& options)
    : SGD(single_group(std::move(params)), options) {}

SGD::SGD(std::vector<ParamGroupSpec> groups, const SgdOptions& defaults)
    : Optimizer("SGD", std::move(groups), sgd_defaults(defaults)),
      dampening_(defaults.dampening),
      nesterov_(defaults.nesterov) {
  if (nesterov_ && dampening_ != 0.0)
    fail("SGD: nesterov needs dampening 0, got dampening ", dampening_);
  check_groups();
}

void SGD::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("momentum", group.momentum);
  require_non_negative("weight_decay", group.weight_decay);
  if (nesterov_ && group.momentum <= 0.0)
    fail("SGD: nesterov needs momentum > 0, got momentum ", group.momentum);
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                 ParamState& state) {
  auto found = state.buffers.find("momentum_buffer");
  const bool first = found == state.buffers.end();
  if (group.momentum != 0.0 && first)
    found =
        state.buffers
            .emplace("momentum_buffer", Tensor::empty(param.shape(), param.dtype(), param.device()))
            .first;
  const Tensor buffer = group.momentum != 0.0 ? found->second : Tensor();
  if (fusable({&param, &grad}) && (!buffer.defined() || fusable({&param, &buffer}))) {
    dispatch_floating(param.dtype(), "SGD", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const SgdStep<T> step{param.data<T>(),
                            grad.data<T>(),
                            buffer.defined() ? buffer.data<T>() : nullptr,
                            static_cast<T>(group.weight_decay),
                            static_cast<T>(group.momentum),
                            static_cast<T>(1.0 - dampening_),
                            static_cast<T>(-group.lr)};
      // The options become template arguments so that each combination is a branch-free loop.
      with_flag(group.weight_decay != 0.0, [&](auto decay) {
        with_flag(buffer.defined(), [&](auto momentum) {
          with_flag(first, [&](auto first_step) {
            with_flag(nesterov_, [&](auto nesterov) {
              for_ranges(param.numel(), [&](std::int64_t begin, std::int64_t end) {
                step.template run<decay(), momentum(), first_step(), nesterov()>(begin, end);
              });
            });
          });
        });
      });
    });
    param.storage().bump_version();
    if (buffer.defined()) buffer.storage().bump_version();
    return;
  }
  // Elsewhere the device's back-end runs it: one kernel on a GPU, composed ops by default.
  backend_for(param.device())
      .sgd_step(param, grad, buffer,
                {group.lr, group.weight_decay, group.momentum, dampening_, nesterov_, first});
  param.storage().bump_version();
  if (buffer.defined()) buffer.storage().bump_version();
}

}  // namespace ds::optim
