#include "optim/parameter.hpp"

#include <utility>

namespace ds::optim {

std::vector<ParamGroupSpec> single_group(std::vector<NamedParameter> params) {
  ParamGroupSpec group;
  group.params = std::move(params);
  return {std::move(group)};
}

NamePredicate name_ends_with(std::vector<std::string> suffixes) {
  return [suffixes = std::move(suffixes)](const std::string& name) {
    for (const std::string& suffix : suffixes) {
      if (name.ends_with(suffix)) return true;
    }
    return false;
  };
}

std::vector<ParamGroupSpec> split_by_name(const std::vector<NamedParameter>& params,
                                          const NamePredicate& predicate,
                                          const ParamGroupSpec& matching) {
  ParamGroupSpec rest;
  ParamGroupSpec special = matching;
  special.params.clear();
  for (const NamedParameter& param : params) {
    (predicate(param.name) ? special : rest).params.push_back(param);
  }
  return {std::move(rest), std::move(special)};
}

}  // namespace ds::optim
