#pragma once
// Named parameters and parameter groups. A parameter keeps its dotted state-dict name
// ("layer1.0.conv1.shift") so that groups can be formed by name and optimizer state can be
// saved under names that survive a rebuild of the model.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace ds::optim {

struct NamedParameter {
  std::string name;
  Tensor tensor;
};

// What a caller asks for: parameters plus the hyper-parameters this group overrides. Unset
// fields take the optimizer's defaults (as the keys of a PyTorch param-group dict do).
struct ParamGroupSpec {
  std::vector<NamedParameter> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
  std::optional<double> momentum;  // SGD
  std::optional<double> beta1;     // Adam, RAdam, Ranger
  std::optional<double> beta2;
  std::optional<double> eps;
};

// A group as the optimizer holds it, every hyper-parameter resolved. An optimizer ignores the
// fields it does not use (Adam has no momentum, SGD no betas). Schedulers change `lr`.
struct ParamGroup {
  std::vector<NamedParameter> params;
  double lr = 0.0;
  double weight_decay = 0.0;
  double momentum = 0.0;
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  // The lr a scheduler started from; set by the first scheduler attached (as PyTorch's).
  std::optional<double> initial_lr;
};

// All parameters in one group with the optimizer's defaults.
std::vector<ParamGroupSpec> single_group(std::vector<NamedParameter> params);

using NamePredicate = std::function<bool(const std::string& name)>;

// True for names ending in any of the suffixes, e.g. name_ends_with({".sign", ".shift"}).
NamePredicate name_ends_with(std::vector<std::string> suffixes);

// Two groups, in this order: the parameters that do not match (optimizer defaults) and those
// that do (with `matching`'s overrides; its own params are ignored). Both groups are always
// present, possibly empty, so that group indices, and thus saved state, do not depend on the
// model; the parameters keep their relative order.
std::vector<ParamGroupSpec> split_by_name(const std::vector<NamedParameter>& params,
                                          const NamePredicate& predicate,
                                          const ParamGroupSpec& matching);

}  // namespace ds::optim
