// Parameter groups: splitting by name, per-group hyper-parameters, and the checks on the
// parameters an optimizer is given.
#include <catch2/catch.hpp>

#include "problem.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"

using namespace ds;
using namespace ds::optim;
using namespace ds::test;
using ds::testing::MessageContains;

namespace {

std::vector<NamedParameter> shift_layer_params() {
  auto param = [](const char* name) {
    Tensor t = Tensor::zeros({2});
    t.requires_grad_();
    return NamedParameter{name, t};
  };
  return {param("conv1.weight"),
          param("layer1.0.conv1.shift"),
          param("layer1.0.conv1.sign"),
          param("layer1.0.bn1.weight"),
          param("fc.sign"),
          param("fc.bias")};
}

std::vector<std::string> names_of(const std::vector<NamedParameter>& params) {
  std::vector<std::string> names;
  for (const NamedParameter& param : params) names.push_back(param.name);
  return names;
}

}  // namespace

TEST_CASE("split_by_name puts matching parameters in a second group", "[optim][groups]") {
  ParamGroupSpec sign_group;
  sign_group.lr = 0.5;
  sign_group.weight_decay = 0.0;
  const auto specs =
      split_by_name(shift_layer_params(), name_ends_with({".sign", ".shift"}), sign_group);
  REQUIRE(specs.size() == 2);
  CHECK(names_of(specs[0].params) ==
        std::vector<std::string>{"conv1.weight", "layer1.0.bn1.weight", "fc.bias"});
  CHECK(names_of(specs[1].params) ==
        std::vector<std::string>{"layer1.0.conv1.shift", "layer1.0.conv1.sign", "fc.sign"});
  CHECK_FALSE(specs[0].lr.has_value());

  const SGD sgd(specs, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
  const auto& groups = sgd.param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].lr == 0.1);
  CHECK(groups[0].weight_decay == 1e-4);
  CHECK(groups[1].lr == 0.5);
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[1].momentum == 0.9);  // not overridden: the optimizer's default
}

TEST_CASE("split_by_name keeps an empty group so indices stay fixed", "[optim][groups]") {
  const auto specs = split_by_name(shift_layer_params(), name_ends_with({".scale"}), {});
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].params.size() == 6);
  CHECK(specs[1].params.empty());
  CHECK(Adam(specs).param_groups().size() == 2);
}

TEST_CASE("each group steps with its own learning rate", "[optim][groups]") {
  Tensor a = Tensor::ones({3}, DType::f64);
  Tensor b = Tensor::ones({3}, DType::f64);
  a.requires_grad_();
  b.requires_grad_();
  ParamGroupSpec slow;
  slow.params = {{"b", b}};
  slow.lr = 0.01;
  ParamGroupSpec fast;
  fast.params = {{"a", a}};
  SGD sgd(std::vector<ParamGroupSpec>{fast, slow}, {.lr = 0.5});
  (sum(a) + sum(b)).backward();
  sgd.step();
  CHECK(values_of(a) == std::vector<double>(3, 0.5));
  CHECK(values_of(b) == std::vector<double>(3, 0.99));
  // A trainer may change a group's lr between steps.
  sgd.param_groups()[1].lr = 0.1;
  sgd.step();
  CHECK(values_of(b) == std::vector<double>(3, 0.89));
}

TEST_CASE("optimizers refuse parameters they cannot own", "[optim][groups][errors]") {
  Tensor t = Tensor::zeros({2});
  t.requires_grad_();
  SECTION("no parameters at all") {
    CHECK_THROWS_MATCHES(SGD(std::vector<NamedParameter>{}), Error,
                         MessageContains({"SGD", "empty parameter list"}));
  }
  SECTION("the same name twice") {
    Tensor other = Tensor::zeros({2});
    CHECK_THROWS_MATCHES(Adam(std::vector<NamedParameter>{{"w", t}, {"w", other}}), Error,
                         MessageContains({"Adam", "'w'", "more than once"}));
  }
  SECTION("the same tensor under two names") {
    CHECK_THROWS_MATCHES(RAdam(std::vector<NamedParameter>{{"w", t}, {"v", t}}), Error,
                         MessageContains({"RAdam", "'v'"}));
  }
  SECTION("an empty name") {
    CHECK_THROWS_MATCHES(SGD(std::vector<NamedParameter>{{"", t}}), Error,
                         MessageContains({"empty name"}));
  }
  SECTION("an undefined tensor") {
    CHECK_THROWS_MATCHES(SGD(std::vector<NamedParameter>{{"w", Tensor()}}), Error,
                         MessageContains({"'w'", "undefined"}));
  }
  SECTION("an integer tensor") {
    CHECK_THROWS_MATCHES(SGD(std::vector<NamedParameter>{{"w", Tensor::zeros({2}, DType::i32)}}),
                         Error, MessageContains({"'w'", "i32"}));
  }
  SECTION("a non-leaf tensor") {
    const Tensor derived = t * 2.0;
    CHECK_THROWS_MATCHES(Ranger(std::vector<NamedParameter>{{"w", derived}}), Error,
                         MessageContains({"Ranger", "'w'", "leaf"}));
  }
}
