// A call whose activations span fewer bits than their format runs the plan of the narrower
// format (PreparedWeights::preparation_for): the range it finds, the plan it takes, and the
// result, bit for bit the reference's, up to the flush bounds of the narrower accumulator.
#include <catch2/catch.hpp>
#include <cstdint>
#include <latch>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "random_layers.hpp"
#include "shiftops/kernel.hpp"
#include "shiftops/kernel/plan.hpp"

using namespace ds;
using namespace ds::shift;

namespace {

int narrowest_bits(const ActivationFormat& format, const std::vector<std::int32_t>& x) {
  return kernel::narrowest_format(format, x.data(), static_cast<std::int64_t>(x.size())).bits;
}

// Activations within [lowest, highest], a quarter of them at one of the two.
std::vector<std::int32_t> activations_within(std::mt19937_64& rng, std::int64_t lowest,
                                             std::int64_t highest, std::int64_t count) {
  std::uniform_int_distribution<std::int64_t> value(lowest, highest);
  std::vector<std::int32_t> x(static_cast<std::size_t>(count));
  for (std::int32_t& v : x) {
    const auto pick = rng() % 8;
    v = static_cast<std::int32_t>(pick == 0 ? lowest : pick == 1 ? highest : value(rng));
  }
  return x;
}

// Packed weights of `rows` x `cols` whose amounts reach K = `max_k` in every row.
PackedWeights weights_up_to(std::mt19937_64& rng, int max_k, std::int64_t rows, std::int64_t cols) {
  std::vector<float> values(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const int k = i % static_cast<std::size_t>(cols) == 0 ? max_k : static_cast<int>(rng() % 15);
    values[i] = rng() % 6 == 0 ? 0.0f : (rng() % 2 ? -1.0f : 1.0f) * std::ldexp(1.0f, -k);
  }
  return pack_weights(Tensor::from_vector(values, {rows, cols}), Tensor(), 0, false);
}

// linear_int (batch 1: dot form; 9: column form) and conv2d_int on the prepared weights equal
// the reference for x.
void require_exact_calls(const PreparedWeights& prepared, const std::vector<std::int32_t>& x,
                         const std::string& what) {
  const PackedWeights& w = prepared.weights();
  const ActivationFormat& format = prepared.format();
  for (const std::int64_t batch : {1, 9}) {
    std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * w.rows)), actual(expected);
    linear_reference(w, x.data(), batch, format, expected.data());
    linear_int(prepared, x.data(), batch, actual.data());
    INFO(what << ", linear batch " << batch);
    REQUIRE(actual == expected);
  }
  // The same rows as a 3x3 convolution of cols / 9 channels.
  ConvGeometry g{2, w.cols / 9, 6, 5, 3, 3, {}};
  g.params.pad_h = g.params.pad_w = 1;
  const std::size_t outputs = static_cast<std::size_t>(g.batch * w.rows * g.out_h() * g.out_w());
  std::vector<std::int64_t> expected(outputs), actual(outputs);
  conv2d_reference(w, x.data(), g, format, expected.data());
  conv2d_int(prepared, x.data(), g, actual.data());
  INFO(what << ", conv");
  REQUIRE(actual == expected);
}

}  // namespace

TEST_CASE("the narrowest format holds exactly the values present", "[kernels]") {
  const ActivationFormat s32{32, true}, u32{32, false};
  // Signed b bits hold [-2^(b-1), 2^(b-1) - 1]; never fewer than 2 bits.
  CHECK(narrowest_bits(s32, {0}) == 2);
  CHECK(narrowest_bits(s32, {-2, 1}) == 2);
  CHECK(narrowest_bits(s32, {2}) == 3);
  CHECK(narrowest_bits(s32, {-3}) == 3);
  CHECK(narrowest_bits(s32, {-(1 << 20), (1 << 20) - 1}) == 21);
  CHECK(narrowest_bits(s32, {1 << 20}) == 22);
  CHECK(narrowest_bits(s32, {-(1 << 20) - 1}) == 22);
  CHECK(narrowest_bits(s32, {std::numeric_limits<std::int32_t>::min()}) == 32);
  CHECK(narrowest_bits(s32, {std::numeric_limits<std::int32_t>::max()}) == 32);
  CHECK(narrowest_bits({16, true}, {-32768, 32767}) == 16);
  // Unsigned values travel as bit patterns: the top bit is a magnitude bit.
  CHECK(narrowest_bits(u32, {3}) == 2);
  CHECK(narrowest_bits(u32, {4, 0}) == 3);
  CHECK(narrowest_bits(u32, {(1 << 21) - 1}) == 21);
  CHECK(narrowest_bits(u32, {-1}) == 32);
  CHECK(!kernel::narrowest_format(u32, nullptr, 0).is_signed);
  // A long input, scanned by several threads, with its widest value last.
  std::vector<std::int32_t> many(3'000'001, 5);
  many.back() = -(1 << 25) - 1;
  CHECK(narrowest_bits(s32, many) == 27);
}

TEST_CASE("a call on a narrower range runs a cheaper accumulator, exactly", "[kernels]") {
  std::mt19937_64 rng(31);
  struct Expected {
    Accumulator accumulator;  // the call's plan, and its shift groups for int32 blocks
    int groups;
  };
  struct Case {
    ActivationFormat format;
    int max_k;
    std::int64_t lowest, highest;  // the call's values
    Expected dot, columns;
  };
  const std::int64_t two20 = std::int64_t{1} << 20;
  const Expected int64{Accumulator::int64, 0}, wide{Accumulator::wide, 0};
  const auto blocks = [](int groups) { return Expected{Accumulator::int32_blocks, groups}; };
  const Case cases[] = {
      // 16.16 values below 128 in magnitude: one column pass of int32 blocks in 4 or 8 shift
      // groups instead of two halves in 2 groups each; one bit more keeps the halves. The dot
      // form keeps its int64 lanes down to 17 magnitude bits, where int32 blocks take 2 groups.
      {{32, true}, 14, -2 * two20, 2 * two20 - 1, int64, blocks(4)},
      {{32, true}, 14, -8 * two20, 8 * two20 - 1, int64, blocks(8)},
      {{32, true}, 14, -16 * two20, 16 * two20 - 1, int64, {Accumulator::int32_halves, 2}},
      {{32, false}, 14, 0, 2 * two20 - 1, int64, blocks(4)},
      {{32, false}, 14, 0, 65535, blocks(2), blocks(2)},
      // 16-bit values within 10 magnitude bits: one group instead of two.
      {{16, true}, 14, -1024, 1023, blocks(1), blocks(1)},
      {{16, true}, 14, -1025, 1023, blocks(2), blocks(2)},
      // K = 40 with 32-bit values: wide for the format; for values of 10 bits int64 lanes in
      // the dot form, 6 groups of int32 blocks in the column form.
      {{32, true}, 40, -1024, 1023, int64, blocks(6)},
      {{32, true}, 40, -4 * two20, 4 * two20, wide, wide},
  };
  for (const Case& c : cases) {
    const PackedWeights w = weights_up_to(rng, c.max_k, 13, 9 * 7);
    const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), c.format);
    auto x = activations_within(rng, c.lowest, c.highest, 2 * 7 * 6 * 5 + 9 * w.cols);
    // Every call's input starts at x[0] and so holds both ends: each takes the plan checked here.
    x[0] = static_cast<std::int32_t>(c.lowest);
    x[1] = static_cast<std::int32_t>(c.highest);
    const auto whole = test::random_activations(rng, c.format, x.size());
    const std::string what = std::to_string(c.format.bits) + (c.format.is_signed ? "s" : "u") +
                             " K=" + std::to_string(c.max_k) + " values " +
                             std::to_string(c.lowest) + ".." + std::to_string(c.highest);
    for (const auto& [form, expected] :
         {std::pair{LoopForm::dot, c.dot}, std::pair{LoopForm::columns, c.columns}}) {
      const kernel::Preparation& used =
          prepared.preparation_for(form, x.data(), static_cast<std::int64_t>(x.size()));
      INFO(what << (form == LoopForm::dot ? ", dot form" : ", column form"));
      CHECK(used.plan.accumulator == expected.accumulator);
      if (expected.accumulator == Accumulator::int32_blocks)
        CHECK(used.plan.lanes.groups == expected.groups);
      // The format's own plan is never cheaper than the call's.
      CHECK(!kernel::cheaper(prepared.preparation(form).plan, used.plan));
      // A call over the whole format takes the format's own plan.
      CHECK(
          &prepared.preparation_for(form, whole.data(), static_cast<std::int64_t>(whole.size())) ==
          &prepared.preparation(form));
    }
    require_exact_calls(prepared, x, what);
    require_exact_calls(prepared, whole, what + ", then the whole format");
  }
}

TEST_CASE("narrowed int32 blocks flush before they can overflow", "[kernels]") {
  // 32-bit values at the bound of m = 21 (lo < 4, 4 shift groups) and m = 23 magnitude bits
  // (lo < 2, 8 groups): terms of up to 2^24. Each row puts all its weights on one amount: 11 and
  // 7 (the largest lo of their groups in both splits; a larger split would make their terms
  // 2^26 and overflow a segment), or 14 (the top group); one weight sets K = 14. All terms of a
  // row have one sign, over 40000 columns. The column form (batch 8, 24) runs the narrowed
  // blocks, the dot form (batch 1) its int64 lanes.
  for (const int m : {21, 23})
    for (const bool is_signed : {true, false}) {
      const ActivationFormat format{32, is_signed};
      const std::int64_t rows = 3, cols = 40000;
      const int amounts[rows] = {11, 7, 14};
      std::vector<float> weights(static_cast<std::size_t>(rows * cols));
      for (std::size_t i = 0; i < weights.size(); ++i)
        weights[i] = std::ldexp(1.0f, amounts[i / static_cast<std::size_t>(cols)] - 14);
      weights[0] = std::ldexp(1.0f, -14);
      const PreparedWeights prepared(
          std::make_shared<const PackedWeights>(
              pack_weights(Tensor::from_vector(weights, {rows, cols}), Tensor(), 0, false)),
          format);
      const std::int32_t extreme = is_signed ? -(1 << m) : (1 << m) - 1;
      for (const std::int64_t batch : {1, 8, 24}) {
        const std::vector<std::int32_t> x(static_cast<std::size_t>(batch * cols), extreme);
        INFO("m = " << m << (is_signed ? " signed" : " unsigned") << " batch " << batch);
        const kernel::Plan& plan =
            prepared.preparation_for(LoopForm::columns, x.data(), batch * cols).plan;
        REQUIRE(plan.accumulator == Accumulator::int32_blocks);
        REQUIRE(plan.lanes.groups == (m == 21 ? 4 : 8));
        std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * rows)),
            actual(expected);
        linear_reference(prepared.weights(), x.data(), batch, format, expected.data());
        linear_int(prepared, x.data(), batch, actual.data());
        REQUIRE(actual == expected);
        // The exact sums (before the shift right by K) far exceed int32.
        for (std::int64_t r = 0; r < rows; ++r)
          CHECK(std::abs(expected[static_cast<std::size_t>(r)]) > (std::int64_t{1} << 31) >> 14);
      }
    }
}

TEST_CASE("widths of one cost share a preparation", "[kernels]") {
  // With K = 14, 32-bit values of 18 to 21 magnitude bits all take 4 shift groups of lo < 4 in
  // the column form: whichever width comes first, they share one preparation (and its lists),
  // made for the widest of them. 17 bits take 2 groups of lo < 8: another one.
  std::mt19937_64 rng(41);
  const PackedWeights w = weights_up_to(rng, 14, 21, 9 * 16);
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), {32, true});
  std::vector<const kernel::Preparation*> used;
  for (const int m : {18, 21, 19, 17}) {
    auto x =
        activations_within(rng, -(std::int64_t{1} << m), (std::int64_t{1} << m) - 1, 16 * w.cols);
    x[0] = -(1 << m);
    used.push_back(&prepared.preparation_for(LoopForm::columns, x.data(), 16 * w.cols));
    std::vector<std::int64_t> expected(static_cast<std::size_t>(16 * w.rows)), actual(expected);
    linear_reference(w, x.data(), 16, prepared.format(), expected.data());
    linear_int(prepared, x.data(), 16, actual.data());
    INFO(m << " magnitude bits");
    REQUIRE(actual == expected);
  }
  CHECK(used[0] == used[1]);
  CHECK(used[0] == used[2]);
  CHECK(used[0]->plan.lanes.groups == 4);
  CHECK(used[3] != used[0]);
  CHECK(used[3]->plan.lanes.groups == 2);
  CHECK(used[3] != &prepared.preparation(LoopForm::columns));
}

TEST_CASE("a narrowed batch-1 call takes the table form", "[kernels]") {
  // 16-bit activations with 4-bit PS weights (K <= 6): int32 lanes for the format (m + K = 21),
  // the int16 table form for values within 8 signed bits (m + K <= 13), its tiles built by the
  // second call, where the path has it.
  std::mt19937_64 rng(43);
  const ActivationFormat format{16, true};
  const test::LayerFormat layer{4, ShiftType::PS, format};
  for (const KernelPath path : available_kernel_paths()) {
    const PackedWeights w = test::random_packed(rng, layer, {70, 300}, true);
    const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format, path);
    CHECK(!prepared.preparation(LoopForm::dot).plan.lanes.table16);
    for (int call = 0; call < 3; ++call) {
      auto x = activations_within(rng, -128, 127, w.cols);
      x[0] = -128;
      std::vector<std::int64_t> expected(static_cast<std::size_t>(w.rows)), actual(expected);
      linear_reference(w, x.data(), 1, format, expected.data());
      linear_int(prepared, x.data(), 1, actual.data());
      INFO(kernel_path_name(path) << " call " << call);
      REQUIRE(actual == expected);
    }
    const std::vector<std::int32_t> narrow{-128, 127};
    const kernel::Preparation& used = prepared.preparation_for(LoopForm::dot, narrow.data(), 2);
    const bool has_table = path != KernelPath::portable;
    CHECK(used.plan.lanes.table16 == has_table);
    CHECK((used.table_tiles(w) != nullptr) == has_table);
  }
}

TEST_CASE("threads calling with different ranges at once share the prepared weights", "[kernels]") {
  // Each thread's first call narrows to its own range, all released at once: the preparations
  // are made (18 and 20 bits sharing one) and their entry lists built concurrently, and every
  // result is the reference's.
  std::mt19937_64 rng(37);
  const ActivationFormat format{32, true};
  const PackedWeights w = weights_up_to(rng, 14, 40, 9 * 12);
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format);
  const int magnitudes[] = {8, 16, 18, 20, 21, 23, 24, 31};
  std::vector<std::vector<std::int32_t>> inputs;
  for (const int m : magnitudes)
    inputs.push_back(
        activations_within(rng, -(std::int64_t{1} << m), (std::int64_t{1} << m) - 1, 16 * w.cols));
  std::vector<std::vector<std::int64_t>> results(inputs.size());
  std::latch start(static_cast<std::ptrdiff_t>(inputs.size()));
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < inputs.size(); ++t)
    threads.emplace_back([&, t] {
      results[t].resize(static_cast<std::size_t>(16 * w.rows));
      start.arrive_and_wait();
      linear_int(prepared, inputs[t].data(), 16, results[t].data());
    });
  for (std::thread& thread : threads) thread.join();
  for (std::size_t t = 0; t < inputs.size(); ++t) {
    std::vector<std::int64_t> expected(results[t].size());
    linear_reference(w, inputs[t].data(), 16, format, expected.data());
    INFO("values of " << magnitudes[t] << " magnitude bits");
    REQUIRE(results[t] == expected);
  }
}
