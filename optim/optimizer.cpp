#include "optim/optimizer.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "autograd/grad_mode.hpp"
#include "tensor/error.hpp"

namespace ds::optim {

namespace {

// The group fields saved in OptimizerState, with their accessors.
struct GroupField {
  const char* name;
  double ParamGroup::*member;
};
constexpr GroupField kGroupFields[] = {
    {"lr", &ParamGroup::lr},
    {"weight_decay", &ParamGroup::weight_decay},
    {"momentum", &ParamGroup::momentum},
    {"beta1", &ParamGroup::beta1},
    {"beta2", &ParamGroup::beta2},
    {"eps", &ParamGroup::eps},
};

std::string group_key(std::size_t index, const std::string& field) {
  return concat("group.", index, ".", field);
}

ParamGroup resolve(ParamGroupSpec spec, const ParamGroup& defaults) {
  ParamGroup group = defaults;
  group.params = std::move(spec.params);
  group.lr = spec.lr.value_or(defaults.lr);
  group.weight_decay = spec.weight_decay.value_or(defaults.weight_decay);
  group.momentum = spec.momentum.value_or(defaults.momentum);
  group.beta1 = spec.beta1.value_or(defaults.beta1);
  group.beta2 = spec.beta2.value_or(defaults.beta2);
  group.eps = spec.eps.value_or(defaults.eps);
  return group;
}

// A fresh copy of `source` with the parameter's dtype and device.
Tensor copy_like(const Tensor& source, const Tensor& param) {
  Tensor copy = Tensor::empty(param.shape(), param.dtype(), param.device());
  copy.copy_(source);
  return copy;
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<ParamGroupSpec> specs,
                     const ParamGroup& defaults)
    : name_(std::move(name)) {
  std::set<std::string> names;
  std::set<const TensorImpl*> tensors;
  for (ParamGroupSpec& spec : specs) {
    for (const NamedParameter& param : spec.params) {
      if (param.name.empty()) fail(name_, ": a parameter has an empty name");
      if (!param.tensor.defined()) fail(name_, ": parameter '", param.name, "' is undefined");
      if (!is_floating(param.tensor.dtype()))
        fail(name_, ": parameter '", param.name, "' is ", describe(param.tensor),
             ", not floating point");
      if (!param.tensor.is_leaf())
        fail(name_, ": parameter '", param.name, "' is not a leaf tensor (use detach())");
      if (!names.insert(param.name).second)
        fail(name_, ": parameter name '", param.name, "' appears more than once");
      if (!tensors.insert(&param.tensor.impl()).second)
        fail(name_, ": parameter '", param.name, "' is a tensor already given under another name");
    }
    groups_.push_back(resolve(std::move(spec), defaults));
  }
  if (names.empty()) fail(name_, ": got an empty parameter list");
}

void Optimizer::check_groups() const {
  for (const ParamGroup& group : groups_) check_group(group);
}

void Optimizer::require_non_negative(const char* field, double value) const {
  if (!(value >= 0.0)) fail(name_, ": invalid ", field, " ", value, " (must be >= 0)");
}

void Optimizer::require_unit_interval(const char* field, double value) const {
  if (!(value >= 0.0 && value < 1.0))
    fail(name_, ": invalid ", field, " ", value, " (must be in [0, 1))");
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (const ParamGroup& group : groups_) {
    for (const NamedParameter& param : group.params) {
      const Tensor grad = param.tensor.grad();
      if (!grad.defined()) continue;
      update(group, param.tensor, grad, state_[param.name]);
    }
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (const ParamGroup& group : groups_) {
    for (const NamedParameter& param : group.params) {
      const Tensor grad = param.tensor.grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        param.tensor.set_grad(Tensor());
      } else {
        grad.zero_();
      }
    }
  }
}

OptimizerState Optimizer::state() const {
  OptimizerState saved;
  for (const auto& [name, param_state] : state_) {
    saved.scalars[name + ".step"] = static_cast<double>(param_state.step);
    for (const auto& [buffer, tensor] : param_state.buffers) {
      saved.buffers[name + "." + buffer] = tensor.clone();
    }
  }
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    for (const GroupField& field : kGroupFields) {
      saved.scalars[group_key(i, field.name)] = groups_[i].*field.member;
    }
    if (groups_[i].initial_lr) saved.scalars[group_key(i, "initial_lr")] = *groups_[i].initial_lr;
  }
  return saved;
}

void Optimizer::load_state(const OptimizerState& saved) {
  std::map<std::string, Tensor> params;
  for (const ParamGroup& group : groups_) {
    for (const NamedParameter& param : group.params) params.emplace(param.name, param.tensor);
  }
  const std::vector<std::string> known_buffers = buffer_names();
  // Keys are "<param name>.<field>"; parameter names contain dots, fields never do.
  auto split = [&](const std::string& key) {
    const std::size_t dot = key.rfind('.');
    if (dot == std::string::npos || !params.contains(key.substr(0, dot)))
      fail(name_, ".load_state: '", key, "' names no parameter of this optimizer");
    return std::pair{key.substr(0, dot), key.substr(dot + 1)};
  };

  std::map<std::string, ParamState> state;
  for (const auto& [key, tensor] : saved.buffers) {
    const auto [param_name, buffer] = split(key);
    if (std::find(known_buffers.begin(), known_buffers.end(), buffer) == known_buffers.end())
      fail(name_, ".load_state: unknown buffer '", buffer, "' in '", key, "'");
    const Tensor& param = params.at(param_name);
    if (!tensor.defined() || tensor.shape() != param.shape())
      fail(name_, ".load_state: '", key, "' is ", describe(tensor), " but the parameter is ",
           describe(param));
    state[param_name].buffers[buffer] = copy_like(tensor, param);
  }

  std::vector<ParamGroup> groups = groups_;
  std::set<std::string> used;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    for (const GroupField& field : kGroupFields) {
      const std::string key = group_key(i, field.name);
      const auto found = saved.scalars.find(key);
      if (found == saved.scalars.end()) fail(name_, ".load_state: missing '", key, "'");
      groups[i].*field.member = found->second;
      used.insert(key);
    }
    const std::string initial = group_key(i, "initial_lr");
    const auto found = saved.scalars.find(initial);
    groups[i].initial_lr.reset();
    if (found != saved.scalars.end()) {
      groups[i].initial_lr = found->second;
      used.insert(initial);
    }
  }
  for (const auto& [key, value] : saved.scalars) {
    if (used.contains(key)) continue;
    if (key.starts_with("group."))
      fail(name_, ".load_state: '", key, "' does not match the ", groups.size(),
           " parameter groups of this optimizer");
    const auto [param_name, field] = split(key);
    if (field != "step" || value < 0)
      fail(name_, ".load_state: unexpected scalar '", key, "' = ", value);
    state[param_name].step = static_cast<std::int64_t>(value);
  }
  for (const ParamGroup& group : groups) check_group(group);

  groups_ = std::move(groups);
  state_ = std::move(state);
}

}  // namespace ds::optim
