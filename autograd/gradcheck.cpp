#include "autograd/gradcheck.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"

namespace ds::autograd {

namespace {

Tensor evaluate(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                const std::vector<Tensor>& inputs) {
  Tensor out = fn(inputs);
  if (out.dtype() != DType::f64)
    fail("gradcheck: the function must return f64, got ", describe(out));
  return out.contiguous();
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options) {
  for (const Tensor& input : inputs)
    if (input.defined() && input.requires_grad() && input.dtype() != DType::f64)
      fail("gradcheck: inputs must be f64, got ", describe(input));

  // Analytic Jacobian, one backward pass per output element.
  const Tensor out = fn(inputs);
  const std::int64_t n_out = out.numel();
  std::vector<std::vector<double>> analytic(inputs.size());  // [input][out * numel + elem]
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].defined() && inputs[k].requires_grad())
      analytic[k].assign(static_cast<std::size_t>(n_out * inputs[k].numel()), 0.0);
  for (std::int64_t i = 0; i < n_out; ++i) {
    for (const Tensor& input : inputs)
      if (input.defined() && input.requires_grad()) input.set_grad({});
    Tensor seed = Tensor::zeros(out.shape(), DType::f64);
    seed.data<double>()[i] = 1.0;
    if (out.requires_grad()) out.backward(seed, /*retain_graph=*/true);
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      if (analytic[k].empty() || !inputs[k].grad().defined()) continue;
      const auto grad = inputs[k].grad().to_vector<double>();
      std::copy(grad.begin(), grad.end(),
                analytic[k].begin() + static_cast<std::ptrdiff_t>(i * inputs[k].numel()));
    }
  }
  for (const Tensor& input : inputs)
    if (input.defined() && input.requires_grad()) input.set_grad({});

  // Numeric Jacobian by central differences, one input element at a time.
  NoGradGuard no_grad;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (analytic[k].empty()) continue;
    std::vector<Tensor> perturbed = inputs;
    Tensor x = inputs[k].detach().contiguous().clone();
    perturbed[k] = x;
    double* values = x.data<double>();
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double original = values[j];
      values[j] = original + options.eps;
      const auto plus = evaluate(fn, perturbed).to_vector<double>();
      values[j] = original - options.eps;
      const auto minus = evaluate(fn, perturbed).to_vector<double>();
      values[j] = original;
      for (std::int64_t i = 0; i < n_out; ++i) {
        const double numeric = (plus[i] - minus[i]) / (2 * options.eps);
        const double exact = analytic[k][static_cast<std::size_t>(i * x.numel() + j)];
        if (std::abs(exact - numeric) > options.atol + options.rtol * std::abs(numeric))
          return {false, concat("gradcheck: d(output[", i, "])/d(input ", k, "[", j, "]) analytic ",
                                exact, " but numeric ", numeric)};
      }
    }
  }
  return {};
}

}  // namespace ds::autograd
