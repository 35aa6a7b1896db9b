#pragma once
// The optimizer interface shared by SGD, Adam, RAdam, Ranger, Adadelta, Adagrad and RMSprop:
// parameter groups, zero_grad, step, and a plain-struct state for checkpoints.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "optim/parameter.hpp"
#include "tensor/tensor.hpp"

namespace ds::optim {

// Everything an optimizer needs to continue bit for bit after a restart, as plain data that a
// checkpoint writer can serialise. Optimizer-wide settings (nesterov, amsgrad, lookahead k)
// are configuration, not state: the restoring code constructs the optimizer with them again.
struct OptimizerState {
  // Per-parameter buffers keyed "<param name>.<buffer>", e.g. "fc.weight.exp_avg".
  std::map<std::string, Tensor> buffers;
  // Per-parameter step counts keyed "<param name>.step", and the hyper-parameters of every
  // group keyed "group.<index>.<field>" (lr, weight_decay, momentum, beta1, beta2, eps and,
  // once a scheduler set it, initial_lr).
  std::map<std::string, double> scalars;
};

// What an optimizer keeps for one parameter; created at its first step with a gradient.
struct ParamState {
  std::int64_t step = 0;
  std::map<std::string, Tensor> buffers;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient (parameters without one are left alone and
  // get no state), in place and without recording a graph.
  void step();
  // Zeroes the gradients in place, or drops them with set_to_none (PyTorch 1.13's default is
  // to zero them).
  void zero_grad(bool set_to_none = false);

  // Mutable so that schedulers and trainers can change lr (or weight decay) between steps.
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  const std::string& name() const { return name_; }

  // Copies: later steps do not change an exported state, nor does the caller's state change
  // the optimizer after load_state.
  OptimizerState state() const;
  // Replaces the whole state. Throws ds::Error (and changes nothing) on an unknown parameter
  // or buffer, a buffer of the wrong shape, a missing or out-of-range group hyper-parameter.
  void load_state(const OptimizerState& state);

 protected:
  // `defaults` gives every hyper-parameter a group spec leaves unset. The derived constructor
  // must call check_groups() once its own options are in place.
  Optimizer(std::string name, std::vector<ParamGroupSpec> specs, const ParamGroup& defaults);

  // One parameter's update; runs under a NoGradGuard with a defined gradient.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                      ParamState& state) = 0;
  // Throws ds::Error naming the hyper-parameter of `group` that is out of range.
  virtual void check_group(const ParamGroup& group) const = 0;
  // The buffers this optimizer may create; load_state refuses any other.
  virtual std::vector<std::string> buffer_names() const = 0;

  void check_groups() const;

  // Shared range checks; the message names the optimizer and the hyper-parameter.
  void require_non_negative(const char* field, double value) const;
  void require_unit_interval(const char* field, double value) const;  // [0, 1)

 private:
  std::string name_;
  std::vector<ParamGroup> groups_;
  std::map<std::string, ParamState> state_;  // by parameter name
};

}  // namespace ds::optim
