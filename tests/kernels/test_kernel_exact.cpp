// The integer kernels against the plain scalar reference, bit for bit: every path this CPU runs,
// weight bits 2-8 (PS and Q, 4- and 8-bit codes), activations of 8, 16 and 32 bits signed and
// unsigned, sizes that are not multiples of any vector width, zero weights, the largest shifts,
// saturated inputs, every convolution geometry, and each accumulator choice.
#include <algorithm>
#include <catch2/catch.hpp>
#include <initializer_list>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "random_layers.hpp"
#include "shiftops/kernel.hpp"
#include "shiftops/kernel/plan.hpp"
#include "support/thread_count.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::shift;
using ds::testing::MessageContains;

namespace {

std::string describe_case(const test::LayerFormat& f, const KernelPath path) {
  return std::string(kernel_path_name(path)) + " " + test::describe(f);
}

// linear_int on every path this CPU runs gives the reference's result, which is returned.
std::vector<std::int64_t> require_exact_linear(const PackedWeights& w,
                                               const std::vector<std::int32_t>& x,
                                               std::int64_t batch, const ActivationFormat& format,
                                               const std::string& what) {
  std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * w.rows));
  std::vector<std::int64_t> actual(expected.size());
  linear_reference(w, x.data(), batch, format, expected.data());
  for (const KernelPath path : available_kernel_paths()) {
    linear_int(w, x.data(), batch, format, actual.data(), path);
    INFO(kernel_path_name(path) << " " << what);
    REQUIRE(actual == expected);
  }
  return expected;
}

// Every activation at the format's extreme: the lowest signed value, or the highest unsigned
// one as its bit pattern.
std::vector<std::int32_t> extreme_activations(const ActivationFormat& format, std::int64_t count) {
  return std::vector<std::int32_t>(
      static_cast<std::size_t>(count),
      static_cast<std::int32_t>(format.is_signed ? format.lowest() : format.highest()));
}

// Every third row puts all its weights on one exponent and sign, so that its segments hold far
// more entries of that key than the slots the other rows' spread gives it: they spill (whole
// segments of them) while the other rows pad. All-zero rows have neither.
PackedWeights crowded_layer(std::mt19937_64& rng, const test::LayerFormat& format,
                            std::int64_t rows, std::int64_t cols) {
  const int k_max = -ps_range(format.weight_bits).min_shift;
  std::uniform_int_distribution<int> k_of(0, k_max);
  std::vector<float> values(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const bool crowded = r % 3 == 0, empty = r % 7 == 1;
      const int k = crowded ? 3 : k_of(rng);
      const float sign = crowded ? (r % 2 ? -1.0f : 1.0f) : (rng() % 2 ? -1.0f : 1.0f);
      values[static_cast<std::size_t>(r * cols + c)] =
          empty || (!crowded && rng() % 5 == 0) ? 0.0f : sign * std::ldexp(1.0f, -k);
    }
  return pack_weights(Tensor::from_vector(values, {rows, cols}), Tensor(), 0,
                      format.weight_bits <= 4);
}

// linear_int on prepared weights gives the reference's result for a random batch.
void require_exact_prepared(std::mt19937_64& rng, const PreparedWeights& prepared,
                            std::int64_t batch, const std::string& what) {
  const PackedWeights& w = prepared.weights();
  const ActivationFormat& format = prepared.format();
  const auto x = test::random_activations(rng, format, batch * w.cols);
  std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * w.rows)), actual(expected);
  linear_reference(w, x.data(), batch, format, expected.data());
  linear_int(prepared, x.data(), batch, actual.data());
  INFO(what << " batch " << batch);
  REQUIRE(actual == expected);
}

}  // namespace

TEST_CASE("linear kernel equals the scalar reference bit for bit", "[kernels]") {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> rows_of(1, 40), cols_of(1, 150);
  const std::int64_t batches[] = {1, 2, 5, 19};
  std::set<std::pair<LoopForm, Accumulator>> seen;
  std::set<int> code_widths;
  for (const KernelPath path : available_kernel_paths())
    for (const test::LayerFormat& format : test::all_layer_formats()) {
      const std::int64_t rows = rows_of(rng), cols = cols_of(rng);
      const std::int64_t batch = batches[rng() % 4];
      const PackedWeights w = test::random_packed(rng, format, {rows, cols}, rng() % 2);
      code_widths.insert(w.code_bits);
      const auto x = test::random_activations(rng, format.activation, batch * cols);
      // The accumulator the call runs (a small input may narrow it).
      const PreparedWeights prepared(kernel::borrow(w), format.activation, path);
      const LoopForm form = batch < 4 ? LoopForm::dot : LoopForm::columns;
      seen.insert({form, prepared.preparation_for(form, x.data(), batch * cols).plan.accumulator});
      std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * rows));
      std::vector<std::int64_t> actual(expected.size());
      linear_reference(w, x.data(), batch, format.activation, expected.data());
      linear_int(prepared, x.data(), batch, actual.data());
      INFO(describe_case(format, path)
           << " rows=" << rows << " cols=" << cols << " batch=" << batch << " K=" << w.max_k);
      REQUIRE(actual == expected);
    }
  CHECK(seen ==
        std::set<std::pair<LoopForm, Accumulator>>{{LoopForm::dot, Accumulator::int32_blocks},
                                                   {LoopForm::dot, Accumulator::int64},
                                                   {LoopForm::dot, Accumulator::wide},
                                                   {LoopForm::columns, Accumulator::int32_blocks},
                                                   {LoopForm::columns, Accumulator::int32_halves},
                                                   {LoopForm::columns, Accumulator::wide}});
  CHECK(code_widths.size() == 2);
}

TEST_CASE("the dot form on int32 and int64 lanes splits its rows over the threads exactly",
          "[kernels]") {
  // Batch 1, 1100 rows by 1000 inputs: past kParallelBatch1Terms, so the rows go to both
  // threads in chunks; 16-bit activations (two shift groups) and 32-bit ones (int64 lanes).
  const test::ThreadCount two_threads(2);
  std::mt19937_64 rng(31);
  for (const ActivationFormat format : {ActivationFormat{16, false}, ActivationFormat{32, true}}) {
    const test::LayerFormat layer{5, ShiftType::PS, format};
    const PackedWeights w = test::random_packed(rng, layer, {1100, 1000}, true);
    REQUIRE(w.rows * w.padded_cols() >= kernel::kParallelBatch1Terms);
    REQUIRE(choose_accumulator(w, format, LoopForm::dot) ==
            (format.bits == 16 ? Accumulator::int32_blocks : Accumulator::int64));
    require_exact_linear(w, test::random_activations(rng, format, w.cols), 1, format,
                         test::describe(layer));
  }
}

TEST_CASE("conv2d kernel equals the reference for every geometry", "[kernels]") {
  std::mt19937_64 rng(11);
  int cases = 0;
  for (const KernelPath path : available_kernel_paths())
    for (const test::LayerFormat& format : test::all_layer_formats()) {
      if (rng() % 3 != 0) continue;  // a third of the formats per path keeps the run short
      const auto drawn = test::random_conv_case(rng);
      if (!drawn) continue;
      const ConvGeometry& g = drawn->geometry;
      const std::int64_t out_channels = drawn->out_channels;
      const PackedWeights w = test::random_packed(
          rng, format, {out_channels, g.channels / g.params.groups, g.kernel_h, g.kernel_w},
          rng() % 2);
      const auto x = test::random_activations(rng, format.activation,
                                              g.batch * g.channels * g.height * g.width);
      const std::size_t outputs =
          static_cast<std::size_t>(g.batch * out_channels * g.out_h() * g.out_w());
      std::vector<std::int64_t> expected(outputs), actual(outputs);
      conv2d_reference(w, x.data(), g, format.activation, expected.data());
      conv2d_int(w, x.data(), g, format.activation, actual.data(), path);
      INFO(describe_case(format, path) << " " << drawn->describe());
      REQUIRE(actual == expected);
      ++cases;
    }
  CHECK(cases > 20);
}

TEST_CASE("convolutions split into items of several images or bands of rows equal the reference",
          "[kernels]") {
  std::mt19937_64 rng(23);
  // A stride-1 convolution as wide as its input reads its inputs from the image, where each
  // 16-lane unit lies within one image; others go through an im2col.
  struct Split {
    test::ConvCase conv;
    bool banded;  // or several images to an item
  };
  const std::vector<Split> splits{
      // Too large for one item: "same" (equal bands, read from the image), and strided, dilated
      // and grouped (a shorter last band, im2col).
      {{{2, 64, 24, 24, 3, 3, {1, 1, 1, 1, 1, 1, 1}}, 8}, true},
      {{{1, 64, 67, 61, 3, 3, {2, 2, 2, 2, 2, 2, 2}}, 4}, true},
      // 8x8 images, 4 units each, read from the image, the last item holding fewer of them;
      // 7x7 images, whose units would straddle two images (im2col).
      {{{37, 16, 8, 8, 3, 3, {1, 1, 1, 1, 1, 1, 1}}, 4}, false},
      {{{5, 16, 7, 7, 3, 3, {1, 1, 1, 1, 1, 1, 1}}, 4}, false},
  };
  // One image read from the image with a partial last unit: dilated, and a 2x3 kernel.
  const std::vector<test::ConvCase> single{{{1, 8, 14, 13, 3, 3, {1, 1, 2, 2, 2, 2, 1}}, 3},
                                           {{1, 8, 13, 11, 2, 3, {1, 1, 0, 1, 1, 1, 1}}, 3}};
  std::set<Accumulator> accumulators;
  const auto check = [&](const test::ConvCase& conv, const Split* split) {
    for (const test::LayerFormat& format : {test::LayerFormat{4, ShiftType::PS, {8, false}},
                                            {5, ShiftType::PS, {16, true}},
                                            {5, ShiftType::Q, {32, true}},
                                            {8, ShiftType::PS, {32, false}}}) {
      const ConvGeometry& g = conv.geometry;
      const PackedWeights w = test::random_packed(
          rng, format, {conv.out_channels, g.channels / g.params.groups, g.kernel_h, g.kernel_w},
          true);
      const auto x = test::random_activations(rng, format.activation,
                                              g.batch * g.channels * g.height * g.width);
      std::vector<std::int64_t> expected(
          static_cast<std::size_t>(g.batch * conv.out_channels * g.out_h() * g.out_w()));
      conv2d_reference(w, x.data(), g, format.activation, expected.data());
      for (const KernelPath path : available_kernel_paths()) {
        const Accumulator accumulator =
            kernel::make_plan(w, format.activation, path, LoopForm::columns).accumulator;
        accumulators.insert(accumulator);
        const kernel::ConvItems items = kernel::conv_items(g, w, accumulator);
        INFO(describe_case(format, path)
             << " " << conv.describe() << ", " << items.images << " images, " << items.bands
             << " bands of " << items.band_rows << " rows");
        if (split) REQUIRE((split->banded ? items.bands : items.images) > 1);
        std::vector<std::int64_t> actual(expected.size());
        conv2d_int(w, x.data(), g, format.activation, actual.data(), path);
        REQUIRE(actual == expected);
      }
    }
  };
  for (const Split& split : splits) check(split.conv, &split);
  for (const test::ConvCase& conv : single) check(conv, nullptr);
  CHECK(accumulators.size() >= 3);
}

TEST_CASE("a convolution read from the image follows each call's geometry", "[kernels]") {
  // A thread keeps the tables of the inputs it reads from the image for the last 16 item shapes
  // it filled. Calls on one thread alternate between a geometry and variants of it in one
  // thing each (kernel height, vertical padding, dilation, channels, batch, size), all read
  // from the image; each must read its own inputs. The 18 variants make the tables be replaced,
  // the base geometry's among them.
  const test::ThreadCount one_thread(1);
  std::mt19937_64 rng(29);
  const test::LayerFormat format{4, ShiftType::PS, {8, false}};
  // 8x8 maps and their variants have whole 16-lane units per image (read from the image).
  const ConvGeometry base{3, 4, 8, 8, 3, 3, {1, 1, 1, 1, 1, 1, 1}};
  std::vector<ConvGeometry> variants(6, base);
  variants[0].kernel_h = 1;
  variants[1].params.pad_h = 0;
  variants[2].params.pad_h = 2;
  variants[3].params.dilation_w = variants[3].params.pad_w = 2;
  variants[4].channels = 8;
  variants[5].batch = 5;
  for (std::int64_t height = 10; height <= 32; height += 2) {
    variants.push_back(base);
    variants.back().height = height;
  }
  for (const ConvGeometry& variant : variants)
    for (const ConvGeometry& g : {base, variant}) {
      const PackedWeights w =
          test::random_packed(rng, format, {5, g.channels, g.kernel_h, g.kernel_w}, true);
      const auto x = test::random_activations(rng, format.activation,
                                              g.batch * g.channels * g.height * g.width);
      std::vector<std::int64_t> expected(
          static_cast<std::size_t>(g.batch * 5 * g.out_h() * g.out_w())),
          actual(expected.size());
      conv2d_reference(w, x.data(), g, format.activation, expected.data());
      conv2d_int(w, x.data(), g, format.activation, actual.data(), kernel_path());
      INFO((test::ConvCase{g, 5}.describe()));
      REQUIRE(actual == expected);
    }
}

TEST_CASE("prepared weights give the reference's result call after call", "[kernels]") {
  // One PreparedWeights per layer serves batches of either form (its entry lists are built by
  // the first batched call and reused), convolutions of several geometries, and two threads
  // that call it for the first time at once.
  std::mt19937_64 rng(13);
  int prepared_lists = 0;
  for (const test::LayerFormat& format : test::all_layer_formats()) {
    const std::int64_t rows = 1 + static_cast<std::int64_t>(rng() % 40);
    const std::int64_t cols = 9 * (1 + static_cast<std::int64_t>(rng() % 20));
    const PackedWeights w = test::random_packed(rng, format, {rows, cols}, rng() % 2);
    const auto shared = std::make_shared<const PackedWeights>(w);
    const PreparedWeights first_use(shared, format.activation);
    std::vector<std::vector<std::int32_t>> inputs;
    std::vector<std::vector<std::int64_t>> results(2);
    for (int t = 0; t < 2; ++t)
      inputs.push_back(test::random_activations(rng, format.activation, 70 * cols));
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        results[t].resize(static_cast<std::size_t>(70 * rows));
        linear_int(first_use, inputs[t].data(), 70, results[t].data());
      });
    for (std::thread& thread : threads) thread.join();
    for (int t = 0; t < 2; ++t) {
      std::vector<std::int64_t> expected(results[t].size());
      linear_reference(w, inputs[t].data(), 70, format.activation, expected.data());
      INFO(test::describe(format) << " thread " << t);
      REQUIRE(results[t] == expected);
    }
    prepared_lists += first_use.accumulator(LoopForm::columns) != Accumulator::wide;
    for (const std::int64_t batch : {1, 64, 3, 17, 64}) {
      const auto x = test::random_activations(rng, format.activation, batch * cols);
      std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * rows)), actual(expected);
      linear_reference(w, x.data(), batch, format.activation, expected.data());
      linear_int(first_use, x.data(), batch, actual.data());
      INFO(test::describe(format) << " batch " << batch);
      REQUIRE(actual == expected);
    }
    // The same rows as a convolution with cols = channels * 3 * 3, two geometries.
    for (const std::int64_t size : {5, 11}) {
      ConvGeometry g{1 + size % 3, cols / 9, size, size, 3, 3, {}};
      g.params.pad_h = g.params.pad_w = 1;
      const auto x = test::random_activations(rng, format.activation,
                                              g.batch * g.channels * g.height * g.width);
      const std::size_t outputs = static_cast<std::size_t>(g.batch * rows * g.out_h() * g.out_w());
      std::vector<std::int64_t> expected(outputs), actual(outputs);
      conv2d_reference(w, x.data(), g, format.activation, expected.data());
      conv2d_int(first_use, x.data(), g, actual.data());
      INFO(test::describe(format) << " conv " << size);
      REQUIRE(actual == expected);
    }
  }
  CHECK(prepared_lists > 5);
}

TEST_CASE("entries beyond a key's slots spill and still sum exactly", "[kernels]") {
  std::mt19937_64 rng(17);
  for (const test::LayerFormat& format : {test::LayerFormat{5, ShiftType::PS, {16, true}},
                                          test::LayerFormat{4, ShiftType::PS, {8, false}},
                                          test::LayerFormat{5, ShiftType::Q, {32, true}}}) {
    const std::int64_t rows = 30, cols = 300;
    const PackedWeights w = crowded_layer(rng, format, rows, cols);
    const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format.activation);
    for (const std::int64_t batch : {64, 70})
      require_exact_prepared(rng, prepared, batch, test::describe(format));
    const kernel::EntryLists* lists = prepared.preparation(LoopForm::columns).lists(w);
    REQUIRE(lists != nullptr);
    CHECK(lists->spills.size() / 2 >= static_cast<std::size_t>(rows / 3 * (cols / 2)));
  }
}

TEST_CASE("lists built by several threads point into the joined spill list", "[kernels]") {
  // 2^20 weights: enough for the lists to be built on all threads, each appending its rows'
  // spills to its own list, which are then joined and the records' offsets moved.
  const test::ThreadCount two_threads(2);
  std::mt19937_64 rng(19);
  const test::LayerFormat format{4, ShiftType::PS, {8, true}};
  const PackedWeights w = crowded_layer(rng, format, 1024, 1024);
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format.activation);
  require_exact_prepared(rng, prepared, 4, test::describe(format));
}

TEST_CASE("int32 partial sums flush before they can overflow", "[kernels]") {
  // Every term at the format's extreme: x = lowest or highest shifted by the whole K, over
  // enough columns for several flushes, in the dot (batch 1) and column (batch 8, 40, 64) forms.
  for (const bool is_signed : {true, false}) {
    const ActivationFormat format{8, is_signed};
    const std::int64_t cols = 40000;
    std::vector<float> weights(static_cast<std::size_t>(2 * cols), is_signed ? -1.0f : 1.0f);
    weights[0] = weights[static_cast<std::size_t>(cols)] = std::ldexp(1.0f, -10);  // K = 10
    const PackedWeights w =
        pack_weights(Tensor::from_vector(weights, {2, cols}), Tensor(), 0, false);
    for (const LoopForm form : {LoopForm::dot, LoopForm::columns})
      REQUIRE(choose_accumulator(w, format, form) == Accumulator::int32_blocks);
    for (const std::int64_t batch : {1, 8, 40, 64}) {
      const auto expected = require_exact_linear(w, extreme_activations(format, batch * cols),
                                                 batch, format, "batch " + std::to_string(batch));
      // The exact sum far exceeds int32: 39999 terms of 2^17 (signed) or 255 * 2^10.
      CHECK(std::abs(expected[0]) > (std::int64_t{1} << 31) >> 10);
    }
  }
}

TEST_CASE("int16 dot lanes widen before they can overflow", "[kernels]") {
  // The batch-1 form on int16 lanes (AVX-512) takes terms of m + K <= 13 bits, three to a lane
  // between widenings: 8-bit signed activations with K = 6 (-128 << 6 negated: 2^13) and
  // unsigned ones with K = 5 (255 << 5), in 4- and 8-bit codes. Every term is at the extreme,
  // so a fourth term per lane would overflow int16. Also K = 0 (255 terms to a lane, the most
  // 2^15 - 1 allows for 128 << 0).
  for (const bool is_signed : {true, false})
    for (const int k_top : {is_signed ? 6 : 5, 0})
      for (const bool allow_4bit : {true, false}) {
        const ActivationFormat format{8, is_signed};
        const std::int64_t cols = 4000;
        std::vector<float> weights(static_cast<std::size_t>(2 * cols), is_signed ? -1.0f : 1.0f);
        weights[0] = weights[static_cast<std::size_t>(cols)] = std::ldexp(1.0f, -k_top);
        const PackedWeights w =
            pack_weights(Tensor::from_vector(weights, {2, cols}), Tensor(), 0, allow_4bit);
        REQUIRE(w.code_bits == (allow_4bit ? 4 : 8));
        const auto expected = require_exact_linear(w, extreme_activations(format, cols), 1, format,
                                                   "K " + std::to_string(k_top));
        CHECK(std::abs(expected[0]) > (std::int64_t{1} << 15) >> k_top);
      }
}

TEST_CASE("int16 column sums widen before they can overflow", "[kernels]") {
  // The column form sums 8-bit activations in int16 lanes on tiles of 64 or 128 positions
  // (on AVX-512 batch 208 runs one of each, then a 16-lane tile on int32 lanes): a lo level,
  // or a run of levels (Horner-style) while the slots bound the run's sum (Schedule::
  // widen_after). Weights on amounts 0-3 in turn fill each level's slots alike, and the inputs
  // make every term of a row one sign at the largest magnitude: unsigned 255 under rows all of
  // one sign (each sign bounded on its own), signed 127 under positive and -128 under negative
  // weights (both signs bounded together). One more level per run would overflow.
  for (const bool is_signed : {true, false}) {
    const ActivationFormat format{8, is_signed};
    const int m = is_signed ? 7 : 8;
    const std::int64_t rows = 8, cols = 336;
    std::vector<float> weights(static_cast<std::size_t>(rows * cols));
    std::vector<std::int32_t> x(static_cast<std::size_t>(cols));
    for (std::int64_t c = 0; c < cols; ++c) {
      const bool negative_column = is_signed && c % 2 == 1;
      x[static_cast<std::size_t>(c)] = is_signed ? (negative_column ? -128 : 127) : 255;
      for (std::int64_t r = 0; r < rows; ++r) {
        const bool negative = is_signed ? negative_column : r % 2 == 1;
        weights[static_cast<std::size_t>(r * cols + c)] =
            (negative ? -1.0f : 1.0f) * std::ldexp(1.0f, -static_cast<int>(c / 2 % 4));
      }
    }
    const auto w = std::make_shared<const PackedWeights>(
        pack_weights(Tensor::from_vector(weights, {rows, cols}), Tensor(), 0, false));
    const PreparedWeights prepared(w, format);
    const kernel::Preparation& columns = prepared.preparation(LoopForm::columns);
    REQUIRE(columns.plan.lanes.column16_bits == m);
    // 14 entries per level and sign in each 112-weight segment (signed), or 28 of one sign
    // (unsigned): runs of 3 levels, whose sum reaches 28 * (4 + 2 + 1) terms of 127 or 128
    // (24990), and of 2 levels, 28 * (2 + 1) of 255 (21420).
    const kernel::Schedule& schedule = columns.lists(*w)->schedule;
    const std::vector<int> runs(schedule.widen_after, schedule.widen_after + 4);
    CHECK(runs == (is_signed ? std::vector<int>{0, 0, 3, 1} : std::vector<int>{0, 2, 0, 2}));
    for (const std::int64_t batch : {64, 128, 208}) {
      std::vector<std::int32_t> batch_x;
      for (std::int64_t b = 0; b < batch; ++b) batch_x.insert(batch_x.end(), x.begin(), x.end());
      require_exact_linear(*w, batch_x, batch, format, "batch " + std::to_string(batch));
    }
  }
}

namespace {

// The table form runs calls of batch < 4 from the second call on a PreparedWeights on (the
// first takes the dot form): calls of batch 1, 3 and 2 against the reference. Returns whether
// the table form ran (its tiles exist).
bool require_exact_table_form(std::mt19937_64& rng, const PackedWeights& w,
                              const ActivationFormat& format, const std::string& what,
                              const std::vector<std::int32_t>* fixed_x = nullptr) {
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format, kernel_path());
  for (const std::int64_t batch : {1, 3, 2}) {
    const auto x = fixed_x ? *fixed_x : test::random_activations(rng, format, batch * w.cols);
    const std::int64_t n = static_cast<std::int64_t>(x.size()) / w.cols;
    std::vector<std::int64_t> expected(static_cast<std::size_t>(n * w.rows)), actual(expected);
    linear_reference(w, x.data(), n, format, expected.data());
    linear_int(prepared, x.data(), n, actual.data());
    INFO(what << " rows=" << w.rows << " cols=" << w.cols << " batch " << n);
    REQUIRE(actual == expected);
  }
  return prepared.preparation(LoopForm::dot).table_tiles(w) != nullptr;
}

}  // namespace

TEST_CASE("the batch-1 table form equals the reference", "[kernels]") {
  // Rows in whole and partial tiles of 64 (tiles run in twos), inputs across the runs of 256
  // that are widened to int32, 4-bit codes and 8-bit codes whose amounts fit a nibble, zero
  // weights, activations at both ends of signed and unsigned 8-bit formats.
  std::mt19937_64 rng(23);
  std::set<int> table_codes;  // code widths that ran through the table form (0: none)
  for (const test::LayerFormat format : {test::LayerFormat{4, ShiftType::PS, {8, true}},
                                         test::LayerFormat{3, ShiftType::Q, {8, false}},
                                         test::LayerFormat{2, ShiftType::PS, {8, true}},
                                         test::LayerFormat{4, ShiftType::Q, {6, true}}})
    for (const auto& [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {1, 1}, {63, 64}, {64, 300}, {65, 63}, {130, 520}, {200, 700}})
      for (const bool allow_4bit : {true, false}) {
        PackedWeights w = pack_weights(test::random_shift_weights(rng, format, {rows, cols}),
                                       Tensor(), 0, allow_4bit);
        w.bias = test::random_bias(rng, rows);
        const bool used =
            require_exact_table_form(rng, w, format.activation, test::describe(format));
        // Terms of m + K <= 13 bits with K <= 6 (4- and 8-bit codes) take it on AVX-512 and AVX2.
        const int m = format.activation.bits - (format.activation.is_signed ? 1 : 0);
        const bool expected = kernel_path() != KernelPath::portable && m + w.max_k <= 13 &&
                              w.max_k <= kMaxNibbleAmount;
        INFO(test::describe(format) << " code bits " << w.code_bits << " K=" << w.max_k);
        CHECK(used == expected);
        table_codes.insert(used ? w.code_bits : 0);
      }
  if (kernel_path() != KernelPath::portable) CHECK(table_codes == std::set<int>{0, 4, 8});
}

TEST_CASE("the table form's int16 sums widen before they can overflow", "[kernels]") {
  // Every term at the extreme of its table, over 4000 inputs (15 runs of 256): -(-128 << 6) =
  // 2^13 for signed activations with K = 6, 255 << 5 and -(255 << 5) for unsigned ones with
  // K = 5. Also 4160 rows by 2048 inputs (2^23 terms): tiles split over the threads in chunks of
  // odd length.
  for (const bool is_signed : {true, false})
    for (const float sign : {-1.0f, 1.0f}) {
      const ActivationFormat format{8, is_signed};
      const int k_top = is_signed ? 6 : 5;
      const std::int64_t cols = 4000;
      std::vector<float> weights(static_cast<std::size_t>(2 * cols), sign);
      weights[0] = weights[static_cast<std::size_t>(cols)] = std::ldexp(1.0f, -k_top);
      const PackedWeights w =
          pack_weights(Tensor::from_vector(weights, {2, cols}), Tensor(), 0, true);
      const auto x = extreme_activations(format, cols);
      std::mt19937_64 rng(29);
      const bool used = require_exact_table_form(rng, w, format, "extreme terms", &x);
      if (kernel_path() != KernelPath::portable) CHECK(used);
    }
  const test::ThreadCount two_threads(2);
  std::mt19937_64 rng(31);
  const test::LayerFormat format{4, ShiftType::PS, {8, true}};
  const PackedWeights w = test::random_packed(rng, format, {4160, 2048}, true);
  require_exact_table_form(rng, w, format.activation, "threads");
}

TEST_CASE("int32 shift groups and halves flush before they can overflow", "[kernels]") {
  // K = 14 with 16-bit activations (m + K = 29 > 24: two shift groups in either form), with 23-
  // and 24-bit ones (m = 22 or 23: the column form's 8 groups of lo < 2, flushed every 2 blocks
  // and every block; int64 lanes in the dot form) and with 32-bit ones (the column form's 16-bit
  // halves, each in two groups, as for 24 unsigned bits). Every term at the format's extreme with
  // the largest low part of its group (amounts 14 and 7, one per row), over enough columns for
  // many flushes, in the dot (batch 1) and column (batch 8, 24) forms.
  for (const int bits : {16, 23, 24, 32})
    for (const bool is_signed : {true, false}) {
      const ActivationFormat format{bits, is_signed};
      const std::int64_t cols = 40000;
      const float sign = is_signed ? -1.0f : 1.0f;
      // Row 0 on amount 14 (the top group), row 1 on amount 7 (the largest lo of its group):
      // every segment's terms in one group, all of one sign.
      std::vector<float> weights(static_cast<std::size_t>(2 * cols));
      for (std::size_t i = 0; i < weights.size(); ++i)
        weights[i] = sign * std::ldexp(1.0f, i < static_cast<std::size_t>(cols) ? 0 : -7);
      weights[0] = sign * std::ldexp(1.0f, -14);  // K = 14
      const auto w = std::make_shared<const PackedWeights>(
          pack_weights(Tensor::from_vector(weights, {2, cols}), Tensor(), 0, false));
      const PreparedWeights prepared(w, format);
      INFO(bits << (is_signed ? " bits signed" : " bits unsigned"));
      const int m = is_signed ? bits - 1 : bits;
      REQUIRE(prepared.accumulator(LoopForm::dot) ==
              (bits == 16 ? Accumulator::int32_blocks : Accumulator::int64));
      REQUIRE(prepared.accumulator(LoopForm::columns) ==
              (m <= 23 ? Accumulator::int32_blocks : Accumulator::int32_halves));
      if (m == 22 || m == 23)
        REQUIRE(prepared.preparation(LoopForm::columns).plan.lanes.groups == 8);
      for (const std::int64_t batch : {1, 8, 24}) {
        const auto expected =
            require_exact_linear(*w, extreme_activations(format, batch * cols), batch, format,
                                 std::to_string(bits) + " bits, batch " + std::to_string(batch));
        // The exact sum (before the shift right by K) far exceeds int32.
        CHECK(std::abs(expected[0]) > (std::int64_t{1} << 31) >> 14);
      }
    }
}

TEST_CASE("int64 lanes and halves take what int32 blocks cannot", "[kernels]") {
  // 21-bit activations (m = 20) with K = 33: 9 shift groups, too many for int32 blocks in either
  // form, but m + K + 9 <= 62: the dot form takes int64 lanes, the column form the halves (5
  // groups of lo < 8 each).
  std::mt19937_64 rng(5);
  const ActivationFormat format{21, true};
  const std::int64_t rows = 7, cols = 300;
  std::vector<float> weights(static_cast<std::size_t>(rows * cols));
  for (float& weight : weights)
    weight = (rng() % 2 ? -1.0f : 1.0f) * std::ldexp(1.0f, -static_cast<int>(rng() % 34));
  weights[0] = std::ldexp(1.0f, -33);
  const PackedWeights w =
      pack_weights(Tensor::from_vector(weights, {rows, cols}), Tensor(), 0, false);
  REQUIRE(choose_accumulator(w, format, LoopForm::dot) == Accumulator::int64);
  REQUIRE(choose_accumulator(w, format, LoopForm::columns) == Accumulator::int32_halves);
  for (const std::int64_t batch : {1, 19})
    require_exact_linear(w, test::random_activations(rng, format, batch * cols), batch, format,
                         "batch " + std::to_string(batch));
}

TEST_CASE("the floor is taken once, not per term", "[kernels]") {
  // 3 * 2^-1 + 3 * 2^-1 = 3 exactly; flooring each term first (as the original does) gives 2.
  const PackedWeights w =
      pack_weights(Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {1, 2}), Tensor(), 0, true);
  const std::vector<std::int32_t> x{3, 3};
  std::int64_t y = 0;
  linear_int(w, x.data(), 1, {8, true}, &y, kernel_path());
  CHECK(y == 3);
  const std::vector<std::int32_t> negative{-3, 0};
  linear_int(w, negative.data(), 1, {8, true}, &y, kernel_path());
  CHECK(y == -2);  // floor(-1.5)
}

TEST_CASE("packing round-trips and chooses 4-bit codes only where they fit", "[kernels]") {
  std::mt19937_64 rng(3);
  for (const int bits : {2, 3, 4, 5, 8}) {
    const test::LayerFormat format{bits, ShiftType::PS, {16, true}};
    const Tensor weights = test::random_shift_weights(rng, format, {5, 7, 3, 3});
    const PackedWeights packed = pack_weights(weights, Tensor(), 0, bits <= 4);
    CHECK(packed.code_bits == (bits <= 4 ? 4 : 8));
    CHECK(packed.cols == 63);
    CHECK(static_cast<std::int64_t>(packed.codes.size()) == 5 * packed.row_bytes());
    CHECK(unpack_weights(packed).reshape({5, 7, 3, 3}).to_vector<float>() ==
          weights.to_vector<float>());
  }
  // Q with 4 bits spans 8 exponents: with both ends present it needs 8-bit codes.
  const Tensor wide_span = Tensor::from_vector(std::vector<float>{1.0f, -0x1p-7f, 0.0f}, {1, 3});
  CHECK(pack_weights(wide_span, Tensor(), 0, true).code_bits == 8);
}

TEST_CASE("bad kernel inputs are refused with a clear message", "[kernels]") {
  const Tensor three = Tensor::from_vector(std::vector<float>{0.75f}, {1, 1});
  CHECK_THROWS_MATCHES(pack_weights(three, Tensor(), 0, false), Error,
                       MessageContains({"pack_weights", "0.75"}));
  const Tensor one = Tensor::from_vector(std::vector<float>{1.0f}, {1, 1});
  const Tensor off_grid = Tensor::from_vector(std::vector<float>{0.3f}, {1});
  CHECK_THROWS_MATCHES(pack_weights(one, off_grid, 4, false), Error,
                       MessageContains({"bias", "grid"}));
  const PackedWeights w = pack_weights(one, Tensor(), 0, false);
  std::int64_t y = 0;
  const std::int32_t x = 1;
  CHECK_THROWS_MATCHES(linear_int(w, &x, 1, {33, true}, &y, KernelPath::portable), Error,
                       MessageContains({"33 bits"}));
  ConvGeometry g;
  g.channels = 2, g.height = 2, g.width = 2, g.kernel_h = 3, g.kernel_w = 3;
  CHECK_THROWS_MATCHES(conv2d_int(w, &x, g, {8, true}, &y, KernelPath::portable), Error,
                       MessageContains({"columns"}));
  // A 3x3 window on a 2x2 input, wider than it by less than the stride: no output (the count
  // is floored, not truncated toward zero into one position).
  ConvGeometry wide{1, 1, 2, 2, 3, 3, {2, 2, 0, 0, 1, 1, 1}};
  const PackedWeights nine =
      pack_weights(Tensor::from_vector(std::vector<float>(9, 1.0f), {1, 9}), Tensor(), 0, false);
  CHECK_THROWS_MATCHES(conv2d_int(nine, &x, wide, {8, true}, &y, KernelPath::portable), Error,
                       MessageContains({"gives no output"}));
}

TEST_CASE("hand-made packed weights are checked before a kernel trusts them", "[kernels]") {
  // An amount beyond K would index before the wide path's buckets (and on a GPU read out of
  // bounds); codes past the real columns, a wrong byte count or code width are refused too.
  std::mt19937_64 rng(29);
  const test::LayerFormat format{5, ShiftType::PS, {16, true}};
  PackedWeights w = test::random_packed(rng, format, {3, 70}, false);
  REQUIRE(w.max_k < 20);
  const auto x = test::random_activations(rng, format.activation, 70);
  std::vector<std::int64_t> y(3);
  const auto refused = [&](const PackedWeights& bad, const std::string& what) {
    INFO(what);
    CHECK_THROWS_MATCHES(linear_int(bad, x.data(), 1, format.activation, y.data(), kernel_path()),
                         Error, MessageContains({"shift kernel", what}));
  };
  PackedWeights beyond = w;
  beyond.codes[static_cast<std::size_t>(beyond.row_bytes() + 5)] =
      static_cast<std::uint8_t>(beyond.max_k + 1);
  refused(beyond, "row 1 column 5");
  PackedWeights padding = w;
  padding.codes[static_cast<std::size_t>(2 * padding.row_bytes() + 70)] = 0;  // column 70 of 70
  refused(padding, "row 2 column 70");
  PackedWeights short_codes = w;
  short_codes.codes.pop_back();
  refused(short_codes, "code bytes");
  PackedWeights width = w;
  width.code_bits = 6;
  refused(width, "code width 6");
  // 4-bit codes: an amount of 6 in a layer whose K is 3.
  const test::LayerFormat narrow{4, ShiftType::PS, {8, true}};
  PackedWeights nibbles = test::random_packed(rng, narrow, {2, 64}, false);
  REQUIRE(nibbles.code_bits == 4);
  nibbles.max_k = 3;
  std::fill(nibbles.codes.begin(), nibbles.codes.end(), std::uint8_t{0x77});  // all zero weights
  nibbles.codes[33] = 0x67;  // row 1, weights 1 and 17: a zero and amount 6
  const auto x8 = test::random_activations(rng, narrow.activation, 64);
  CHECK_THROWS_MATCHES(
      linear_int(nibbles, x8.data(), 1, narrow.activation, y.data(), kernel_path()), Error,
      MessageContains({"row 1 column 17", "K = 3"}));
  // Amount 127 with the sign bit (0xFF) is a zero weight like 0x7F, for the kernels and the
  // reference alike: at batch 1 the dot form's int32 lanes in two shift groups (which take a
  // weight's group from one bit of its code) and its int64 lanes (which leave a zero weight to
  // the variable shift's count), and the wide path.
  const test::LayerFormat int64_lanes{5, ShiftType::PS, {32, true}};
  const test::LayerFormat wide{8, ShiftType::PS, {32, true}};
  const std::initializer_list<std::pair<test::LayerFormat, Accumulator>> zero_cases = {
      {format, Accumulator::int32_blocks},
      {int64_lanes, Accumulator::int64},
      {wide, Accumulator::wide}};
  for (const auto& [zeros_format, dot_accumulator] : zero_cases) {
    PackedWeights signed_zero = test::random_packed(rng, zeros_format, {3, 70}, true);
    for (std::int64_t c = 0; c < 70; c += 3) signed_zero.codes[static_cast<std::size_t>(c)] = 0xFF;
    const kernel::Plan dot_plan =
        kernel::make_plan(signed_zero, zeros_format.activation, kernel_path(), LoopForm::dot);
    CHECK(dot_plan.accumulator == dot_accumulator);
    if (dot_accumulator == Accumulator::int32_blocks) CHECK(dot_plan.lanes.groups == 2);
    PackedWeights plain_zero = signed_zero;
    std::replace(plain_zero.codes.begin(), plain_zero.codes.end(), std::uint8_t{0xFF}, kZeroCode);
    const auto zeros_x = test::random_activations(rng, zeros_format.activation, 5 * 70);
    for (const std::int64_t batch : {1, 5}) {
      const std::vector<std::int64_t> expected =
          require_exact_linear(plain_zero, zeros_x, batch, zeros_format.activation, "0x7F zeros");
      CHECK(require_exact_linear(signed_zero, zeros_x, batch, zeros_format.activation,
                                 "0xFF zeros") == expected);
    }
    CHECK(signed_zero.sign(0, 0) == 0);
  }
}
