// The optimizers' fused loops (contiguous CPU tensors) against their composed tensor ops (any
// other layout or device): the same arithmetic in the same order, so the same trajectory up to
// the FMAs the compiler may form.
#include <catch2/catch.hpp>

#include "autograd/grad_mode.hpp"
#include "problem.hpp"

using namespace ds;
using namespace ds::test;

TEST_CASE("fused and composed optimizer updates follow the same trajectory", "[optim]") {
  for (const OptimizerCase& c : optimizer_cases()) {
    SECTION(c.name) {
      const Problem fused(DType::f64);
      Problem composed(DType::f64);
      {
        // The same values in a transposed layout: no longer contiguous, so every update of
        // this parameter takes the composed ops.
        NoGradGuard no_grad;
        composed.weight = composed.weight.detach().t().contiguous().t();
      }
      composed.weight.requires_grad_();
      REQUIRE_FALSE(composed.weight.is_contiguous());
      const auto fused_optimizer = c.make(fused);
      const auto composed_optimizer = c.make(composed);
      for (int step = 1; step <= 40; ++step) {
        run_steps(*fused_optimizer, fused, 1);
        run_steps(*composed_optimizer, composed, 1);
        INFO(c.name << " after step " << step);
        const CloseResult same = allclose(composed.weight, fused.weight, 1e-13, 1e-15);
        INFO(same.message);
        REQUIRE(same);
      }
    }
  }
}
