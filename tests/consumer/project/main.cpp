// Uses the installed library through its umbrella header: a matrix product and its gradient,
// checked against values worked out by hand. Prints "consumer ok" only when all of them match.
#include <deepshift/deepshift.hpp>
#include <iostream>
#include <vector>

int main() {
  const ds::Tensor a = ds::Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}).requires_grad_();
  const ds::Tensor b = ds::Tensor::from_vector<float>({5, 6, 7, 8}, {2, 2});
  const ds::Tensor product = ds::matmul(a, b);
  const ds::Tensor total = product.sum();
  total.backward();

  // d(sum(a @ b))/da = ones @ b^T: every row holds the row sums of b, [11, 15].
  const std::vector<float> expected_product = {19, 22, 43, 50};
  const std::vector<float> expected_grad = {11, 15, 11, 15};
  const bool ok = product.to_vector<float>() == expected_product && total.item() == 134.0 &&
                  a.grad().to_vector<float>() == expected_grad;
  std::cout << "a @ b = " << product << "\nsum = " << total.item() << "\ngrad of a = " << a.grad()
            << "\n"
            << (ok ? "consumer ok" : "consumer MISMATCH") << std::endl;
  return ok ? 0 : 1;
}
