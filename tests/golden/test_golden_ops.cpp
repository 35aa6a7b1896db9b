// Compares every op of tensor/ops.hpp with PyTorch: forward values and input gradients for a
// fixed upstream gradient, in f64 (tight) and f32 (the reference rounded once more). The
// fixtures come from generate_tensor_ops.py; each case names its inputs a, b, c, its output
// out and, when differentiable, grad_out and grad_<input>.
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support/golden.hpp"
#include "tensor/ops.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using Inputs = std::vector<Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;
using OpTable = std::map<std::string, OpFn>;

// f32 tolerances must match F32_RTOL/F32_ATOL in generate_tensor_ops.py, which checks that
// torch's own f32 results meet them.
constexpr double kF64Rtol = 1e-10;
constexpr double kF64Atol = 1e-12;
constexpr double kF32Rtol = 1e-5;
constexpr double kF32Atol = 1e-5;

const ds::test::GoldenFile& golden() {
  static const ds::test::GoldenFile file(DS_GOLDEN_DIR "/tensor_ops.golden");
  return file;
}

std::string input_name(std::size_t index) { return std::string(1, static_cast<char>('a' + index)); }

void check_close(const std::string& what, const Tensor& actual, const Tensor& expected,
                 DType dtype) {
  const bool exact = !ds::is_floating(expected.dtype());
  const double rtol = exact ? 0.0 : dtype == DType::f64 ? kF64Rtol : kF32Rtol;
  const double atol = exact ? 0.0 : dtype == DType::f64 ? kF64Atol : kF32Atol;
  const ds::test::CloseResult result = ds::test::allclose(actual, expected, rtol, atol);
  INFO(what << ": " << result.message);
  CHECK(result.ok);
}

// Runs one case in `dtype`: float inputs are converted, integer ones (conditions) kept.
void check_case(const std::string& name, const OpFn& op, DType dtype) {
  const ds::test::GoldenFile& file = golden();
  const bool differentiable = file.contains(name + "/grad_out");
  Inputs inputs;
  for (std::size_t i = 0; file.contains(name + "/" + input_name(i)); ++i) {
    Tensor input = file.get(name + "/" + input_name(i));
    if (ds::is_floating(input.dtype())) input = input.to(dtype);
    if (differentiable && file.contains(name + "/grad_" + input_name(i))) input.requires_grad_();
    inputs.push_back(input);
  }

  const Tensor out = op(inputs);
  const Tensor expected = file.get(name + "/out");
  CHECK(out.dtype() == (ds::is_floating(expected.dtype()) ? dtype : expected.dtype()));
  check_close("forward", out, expected, dtype);
  if (!differentiable) return;

  out.backward(file.get(name + "/grad_out").to(dtype));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string key = name + "/grad_" + input_name(i);
    if (!file.contains(key)) continue;
    check_close("gradient of input " + input_name(i), inputs[i].grad(), file.get(key), dtype);
  }
}

void check_table(const OpTable& table) {
  for (const auto& [name, op] : table) {
    for (const DType dtype : {DType::f64, DType::f32}) {
      INFO("golden case " << name << " in " << ds::dtype_name(dtype));
      CHECK_NOTHROW(check_case(name, op, dtype));
    }
  }
}

OpTable arithmetic_ops() {
  OpTable ops;
  const std::vector<std::string> broadcasts = {"same",    "scalar_right", "scalar_left", "col_row",
                                               "leading", "leading_left", "middle"};
  using Binary = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<std::string, Binary>> binaries = {
      {"add", ds::add}, {"sub", ds::sub},         {"mul", ds::mul},
      {"div", ds::div}, {"maximum", ds::maximum}, {"minimum", ds::minimum},
  };
  for (const auto& [op_name, fn] : binaries) {
    for (const std::string& broadcast : broadcasts) {
      ops[op_name + "_" + broadcast] = [fn = fn](const Inputs& in) { return fn(in[0], in[1]); };
    }
  }
  ops["maximum_ties"] = [](const Inputs& in) { return ds::maximum(in[0], in[1]); };
  ops["minimum_ties"] = [](const Inputs& in) { return ds::minimum(in[0], in[1]); };

  const auto pow_tt = [](const Inputs& in) { return ds::pow(in[0], in[1]); };
  ops["pow_tt_same"] = pow_tt;
  ops["pow_tt_broadcast"] = pow_tt;
  ops["pow_tt_scalar_exponent"] = pow_tt;
  const std::vector<std::pair<std::string, double>> exponents = {
      {"2", 2.0}, {"3", 3.0}, {"neg1", -1.0}, {"half", 0.5}, {"neg1p5", -1.5}, {"2p5", 2.5}};
  for (const auto& [label, exponent] : exponents) {
    ops["pow_ts_" + label] = [e = exponent](const Inputs& in) { return ds::pow(in[0], e); };
  }
  ops["pow_st_2"] = [](const Inputs& in) { return ds::pow(2.0, in[0]); };
  ops["pow_st_2_integers"] = ops["pow_st_2"];
  ops["pow_st_3"] = [](const Inputs& in) { return ds::pow(3.0, in[0]); };
  ops["neg"] = [](const Inputs& in) { return ds::neg(in[0]); };
  ops["neg_scalar"] = ops["neg"];

  ops["op_tensor_plus_scalar"] = [](const Inputs& in) { return in[0] + 1.5; };
  ops["op_tensor_minus_scalar"] = [](const Inputs& in) { return in[0] - 1.5; };
  ops["op_tensor_times_scalar"] = [](const Inputs& in) { return in[0] * -2.5; };
  ops["op_tensor_div_scalar"] = [](const Inputs& in) { return in[0] / 4.0; };
  ops["op_scalar_plus_tensor"] = [](const Inputs& in) { return 1.5 + in[0]; };
  ops["op_scalar_minus_tensor"] = [](const Inputs& in) { return 1.5 - in[0]; };
  ops["op_scalar_times_tensor"] = [](const Inputs& in) { return -2.5 * in[0]; };
  ops["op_scalar_div_tensor"] = [](const Inputs& in) { return 3.0 / in[0]; };
  ops["op_negate"] = [](const Inputs& in) { return -in[0]; };
  ops["add_transposed"] = [](const Inputs& in) { return in[0].t() + in[1]; };
  ops["mul_transposed_broadcast"] = [](const Inputs& in) { return in[0].t() * in[1]; };
  return ops;
}

OpTable unary_ops() {
  OpTable ops;
  using Unary = Tensor (*)(const Tensor&);
  const std::vector<std::pair<std::string, Unary>> unaries = {
      {"exp", ds::exp},     {"exp2", ds::exp2}, {"log", ds::log},   {"log2", ds::log2},
      {"sqrt", ds::sqrt},   {"abs", ds::abs},   {"sign", ds::sign}, {"floor", ds::floor},
      {"round", ds::round}, {"relu", ds::relu},
  };
  for (const auto& [name, fn] : unaries) {
    ops[name] = [fn = fn](const Inputs& in) { return fn(in[0]); };
  }
  ops["exp_scalar"] = ops["exp"];
  ops["sign_zero"] = ops["sign"];
  ops["floor_corners"] = ops["floor"];
  ops["round_half_even"] = ops["round"];
  ops["relu_zero"] = ops["relu"];
  ops["clamp_both"] = [](const Inputs& in) { return ds::clamp(in[0], -0.5, 0.8); };
  ops["clamp_low"] = [](const Inputs& in) { return ds::clamp(in[0], -0.5, std::nullopt); };
  ops["clamp_high"] = [](const Inputs& in) { return ds::clamp(in[0], std::nullopt, 0.8); };
  ops["clamp_at_bounds"] = [](const Inputs& in) { return ds::clamp(in[0], -0.5, 0.75); };
  ops["exp_permuted"] = [](const Inputs& in) { return ds::exp(in[0].permute({2, 0, 1})); };
  return ops;
}

OpTable compare_ops() {
  OpTable ops;
  using Binary = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<std::string, Binary>> comparisons = {
      {"eq", ds::eq}, {"ne", ds::ne}, {"lt", ds::lt},
      {"le", ds::le}, {"gt", ds::gt}, {"ge", ds::ge},
  };
  for (const auto& [name, fn] : comparisons) {
    ops[name + "_broadcast"] = [fn = fn](const Inputs& in) { return fn(in[0], in[1]); };
  }
  const auto where = [](const Inputs& in) { return ds::where(in[0], in[1], in[2]); };
  ops["where_broadcast"] = where;
  ops["where_same"] = where;
  ops["where_scalar_operand"] = where;
  return ops;
}

OpTable reduction_ops() {
  OpTable ops;
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> dim_sets = {
      {"all", {}}, {"d0", {0}}, {"d1", {1}}, {"dlast", {-1}}, {"d02", {0, 2}}};
  for (const auto& [label, dims] : dim_sets) {
    for (const bool keep : {false, true}) {
      const std::string suffix = label + (keep ? "_keep" : "");
      ops["sum_" + suffix] = [d = dims, keep](const Inputs& in) { return ds::sum(in[0], d, keep); };
      ops["mean_" + suffix] = [d = dims, keep](const Inputs& in) {
        return ds::mean(in[0], d, keep);
      };
      ops["max_" + suffix] = [d = dims, keep](const Inputs& in) { return ds::max(in[0], d, keep); };
      ops["min_" + suffix] = [d = dims, keep](const Inputs& in) { return ds::min(in[0], d, keep); };
      for (const std::int64_t correction : {1, 0}) {
        ops["var_c" + std::to_string(correction) + "_" + suffix] = [d = dims, keep,
                                                                    correction](const Inputs& in) {
          return ds::var(in[0], d, keep, correction);
        };
      }
    }
  }
  ops["sum_transposed"] = [](const Inputs& in) { return ds::sum(in[0].t(), {1}); };
  ops["max_ties"] = [](const Inputs& in) { return ds::max(in[0], {1}); };
  ops["min_ties_all"] = [](const Inputs& in) { return ds::min(in[0]); };

  using ArgReduce = Tensor (*)(const Tensor&, std::optional<std::int64_t>, bool);
  const std::vector<std::pair<std::string, ArgReduce>> arg_reductions = {{"argmax", ds::argmax},
                                                                         {"argmin", ds::argmin}};
  for (const auto& [name, fn] : arg_reductions) {
    ops[name + "_all"] = [fn = fn](const Inputs& in) { return fn(in[0], std::nullopt, false); };
    const std::vector<std::pair<std::string, std::int64_t>> dims = {
        {"d0", 0}, {"d1", 1}, {"dm1", -1}};
    for (const auto& [label, dim] : dims) {
      for (const bool keep : {false, true}) {
        ops[name + "_" + label + (keep ? "_keep" : "")] =
            [fn = fn, d = dim, keep](const Inputs& in) { return fn(in[0], d, keep); };
      }
    }
  }
  ops["sum_to_col"] = [](const Inputs& in) { return ds::sum_to(in[0], {3, 1}); };
  ops["sum_to_row"] = [](const Inputs& in) { return ds::sum_to(in[0], {4}); };
  ops["sum_to_same"] = [](const Inputs& in) { return ds::sum_to(in[0], {3, 4}); };
  return ops;
}

OpTable softmax_ops() {
  OpTable ops;
  const std::vector<std::pair<std::string, std::int64_t>> dims = {
      {"d0", 0}, {"d1", 1}, {"d2", 2}, {"dm1", -1}};
  for (const auto& [label, dim] : dims) {
    ops["softmax_" + label] = [d = dim](const Inputs& in) { return ds::softmax(in[0], d); };
    ops["log_softmax_" + label] = [d = dim](const Inputs& in) { return ds::log_softmax(in[0], d); };
  }
  ops["softmax_large"] = [](const Inputs& in) { return ds::softmax(in[0], 1); };
  ops["log_softmax_large"] = [](const Inputs& in) { return ds::log_softmax(in[0], 1); };
  return ops;
}

OpTable matmul_ops() {
  OpTable ops;
  const auto matmul = [](const Inputs& in) { return ds::matmul(in[0], in[1]); };
  for (const char* name :
       {"matmul_2d", "matmul_batched", "matmul_batched_2d", "matmul_batch_broadcast",
        "matmul_vec_mat", "matmul_mat_vec", "matmul_vec_vec"}) {
    ops[name] = matmul;
  }
  ops["matmul_transposed"] = [](const Inputs& in) { return ds::matmul(in[0].t(), in[1].t()); };
  return ops;
}

}  // namespace

TEST_CASE("golden: every fixture case has a C++ counterpart and vice versa", "[golden]") {
  std::set<std::string> implemented;
  for (const OpTable& table : {arithmetic_ops(), unary_ops(), compare_ops(), reduction_ops(),
                               softmax_ops(), matmul_ops()}) {
    for (const auto& entry : table) implemented.insert(entry.first);
  }
  const std::vector<std::string>& cases = golden().cases();
  const std::set<std::string> in_file(cases.begin(), cases.end());
  CHECK(in_file.size() == cases.size());
  for (const std::string& name : in_file) {
    INFO("fixture case without a C++ op: " << name);
    CHECK(implemented.count(name) == 1);
  }
  for (const std::string& name : implemented) {
    INFO("C++ op without a fixture case: " << name);
    CHECK(in_file.count(name) == 1);
  }
}

TEST_CASE("golden: the loader names the file and the key of a missing tensor", "[golden]") {
  CHECK_THROWS_WITH(golden().get("no_such_case/out"),
                    Catch::Contains("tensor_ops.golden") && Catch::Contains("no_such_case/out"));
}

TEST_CASE("allclose reports the first mismatching index", "[golden]") {
  const Tensor expected = Tensor::from_vector<double>({0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor same = expected.to(DType::f32);
  CHECK(ds::test::allclose(same, expected).ok);
  const Tensor differs = Tensor::from_vector<double>({0, 1, 2, 3, 4, 5.1}, {2, 3});
  const ds::test::CloseResult result = ds::test::allclose(differs, expected, 1e-5, 1e-8);
  CHECK_FALSE(result.ok);
  CHECK_THAT(result.message, Catch::Contains("[1, 2]") && Catch::Contains("5.1"));
  CHECK_FALSE(ds::test::allclose(expected.reshape({3, 2}), expected).ok);
}

TEST_CASE("golden: arithmetic and broadcasting", "[golden]") { check_table(arithmetic_ops()); }
TEST_CASE("golden: unary math", "[golden]") { check_table(unary_ops()); }
TEST_CASE("golden: comparisons and where", "[golden]") { check_table(compare_ops()); }
TEST_CASE("golden: reductions", "[golden]") { check_table(reduction_ops()); }
TEST_CASE("golden: softmax and log_softmax", "[golden]") { check_table(softmax_ops()); }
TEST_CASE("golden: matmul", "[golden]") { check_table(matmul_ops()); }
