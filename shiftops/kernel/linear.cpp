// Integer shift linear layer: the dot form for small batches (the codes streamed once per
// sample; on prepared weights with narrow terms, the table form), the column form for larger
// ones (the batch becomes the vector lanes).
#include <algorithm>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "shiftops/kernel/plan.hpp"

namespace ds::shift {

namespace {

// Below this batch the weights are streamed once per sample; from it on, the samples share
// every weight's shift across the vector lanes.
constexpr std::int64_t kColumnBatch = 4;

void linear_wide(const PackedWeights& w, const std::int32_t* x, std::int64_t batch,
                 const ActivationFormat& format, const kernel::Outputs& y) {
#pragma omp parallel if (kernel::worth_threads(batch * w.rows * w.cols))
  {
    std::vector<std::int64_t> buckets(static_cast<std::size_t>(w.max_k) + 1);
#pragma omp for collapse(2) schedule(static)
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t r = 0; r < w.rows; ++r)
        y.set(n * w.rows + r,
              kernel::wide_output(w, r, x + n * w.cols, 1, !format.is_signed, buckets.data()));
  }
}

void linear_dot(const kernel::Plan& plan, const PackedWeights& w, const std::int32_t* x,
                std::int64_t batch, const kernel::Outputs& y) {
  const std::int64_t padded = w.padded_cols();
  const bool dot16 = plan.lanes.dot16;
  // The int16 lanes read sample16 only; the int32 and int64 lanes sample.
  const std::size_t int32_size = dot16 ? 0 : static_cast<std::size_t>(padded);
  std::vector<std::int32_t> sample(int32_size, 0);
  std::vector<std::int16_t> sample16(dot16 ? static_cast<std::size_t>(padded) : 0);
  std::vector<std::int64_t> sums(static_cast<std::size_t>(w.rows));
  const bool parallel = dot16 ? kernel::worth_threads(w.rows * padded)
                              : w.rows * padded >= kernel::kParallelBatch1Terms;
  const std::int64_t chunk = kernel::row_chunk(w.rows, parallel);
  for (std::int64_t n = 0; n < batch; ++n) {
    if (dot16) {
      kernel::order_for_dot16(x + n * w.cols, w.cols, w.code_bits, sample16.data());
    } else {
      std::copy(x + n * w.cols, x + (n + 1) * w.cols, sample.begin());
    }
#pragma omp parallel for schedule(dynamic) if (parallel)
    for (std::int64_t begin = 0; begin < w.rows; begin += chunk) {
      const std::int64_t end = std::min(begin + chunk, w.rows);
      kernel::run_dot(plan, {kernel::code_rows(w, begin), plan.lanes, sample.data(),
                             sample16.data(), begin, end, sums.data() + begin});
    }
    for (std::int64_t r = 0; r < w.rows; ++r)
      y.set(n * w.rows + r, kernel::finish(w, r, sums[static_cast<std::size_t>(r)]));
  }
}

// The table form (loops.hpp): per sample, the lookup tables of its inputs, then the tiles.
void linear_table(const kernel::Plan& plan, const PackedWeights& w, const std::uint8_t* tiles,
                  const std::int32_t* x, std::int64_t batch, const kernel::Outputs& y) {
  const std::int64_t inputs = w.padded_cols(), tile_bytes = inputs * kernel::kTableRows / 2;
  const std::int64_t tile_count = (w.rows + kernel::kTableRows - 1) / kernel::kTableRows;
  // Written in full before they are read: no zero-filling.
  const auto tables = std::make_unique_for_overwrite<std::uint8_t[]>(
      static_cast<std::size_t>(inputs * kernel::kTableBytes));
  const auto sums = std::make_unique_for_overwrite<std::int32_t[]>(
      static_cast<std::size_t>(tile_count * kernel::kTableRows));
  const bool parallel = w.rows * inputs >= kernel::kParallelBatch1Terms;
  // Whole pairs of tiles to a chunk: the AVX-512 loop runs tiles in twos.
  const std::int64_t chunk = (kernel::row_chunk(tile_count, parallel) + 1) & ~std::int64_t{1};
  for (std::int64_t n = 0; n < batch; ++n) {
    plan.loops->lookup_tables(x + n * w.cols, w.cols, inputs, tables.get());
#pragma omp parallel for schedule(dynamic) if (parallel)
    for (std::int64_t begin = 0; begin < tile_count; begin += chunk)
      plan.loops->table_rows({tiles + begin * tile_bytes, tile_bytes, inputs, tables.get(),
                              std::min(chunk, tile_count - begin),
                              sums.get() + begin * kernel::kTableRows});
    for (std::int64_t r = 0; r < w.rows; ++r)
      y.set(n * w.rows + r, kernel::finish(w, r, sums[static_cast<std::size_t>(r)]));
  }
}

// 32-byte vectors (GCC's vector_size cannot take a template's type).
using Int32x8 = std::int32_t __attribute__((vector_size(32)));
using Floatx8 = float __attribute__((vector_size(32)));
using Int64x4 = std::int64_t __attribute__((vector_size(32)));
template <typename D>
using Vector32 = std::conditional_t<std::is_same_v<D, float>, Floatx8,
                                    std::conditional_t<sizeof(D) == 8, Int64x4, Int32x8>>;

// An 8x8 block of 32-bit values transposed in registers: pairs of rows interleaved by 32 bits,
// then by 64 bits, within 16-byte halves (unpacks), then the halves exchanged.
template <typename V>
void transpose_block(V (&r)[8]) requires(sizeof(r[0][0]) == 4) {
  V t[8], u[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i += 4)
#pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * h + 1] =
          __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
#pragma GCC unroll 8
  for (int j = 0; j < 4; ++j) {
    r[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// A 4x4 block of 64-bit values: rows interleaved within 16-byte halves, then halves exchanged.
inline void transpose_block(Int64x4 (&r)[4]) {
  Int64x4 t[4];
#pragma GCC unroll 8
  for (int i = 0; i < 4; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 4, 2, 6);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 1, 5, 3, 7);
  }
#pragma GCC unroll 8
  for (int j = 0; j < 2; ++j) {
    r[j] = __builtin_shufflevector(t[j], t[j + 2], 0, 1, 4, 5);
    r[j + 2] = __builtin_shufflevector(t[j], t[j + 2], 2, 3, 6, 7);
  }
}

// to[j * to_stride + i] = convert(from[i * from_stride + j]) for i < rows, j < cols, in square
// blocks of one vector per row transposed in registers (a scalar loop per element, strided on
// one side, took 5-9% of a batch-64 call); the edges element by element.
template <typename D, typename S, typename Convert>
void transpose(const S* from, std::int64_t from_stride, std::int64_t rows, std::int64_t cols, D* to,
               std::int64_t to_stride, Convert convert) {
  using V = Vector32<D>;
  constexpr int kLanes = sizeof(V) / sizeof(D);
  const std::int64_t block_rows = rows / kLanes * kLanes, block_cols = cols / kLanes * kLanes;
  for (std::int64_t i0 = 0; i0 < block_rows; i0 += kLanes)
    for (std::int64_t j0 = 0; j0 < block_cols; j0 += kLanes) {
      V v[kLanes];
#pragma GCC unroll 8
      for (int i = 0; i < kLanes; ++i) {
        const S* row = from + (i0 + i) * from_stride + j0;
        if constexpr (std::is_same_v<Convert, std::identity> && std::is_same_v<S, D>) {
          __builtin_memcpy(&v[i], row, sizeof(V));
        } else {
#pragma GCC unroll 8
          for (int j = 0; j < kLanes; ++j) v[i][j] = convert(row[j]);
        }
      }
      transpose_block(v);
#pragma GCC unroll 8
      for (int j = 0; j < kLanes; ++j)
        __builtin_memcpy(to + (j0 + j) * to_stride + i0, &v[j], sizeof(V));
    }
  // The rows below the last whole block, then the columns right of the blocks.
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t i = block_rows; i < rows; ++i)
      to[j * to_stride + i] = convert(from[i * from_stride + j]);
  for (std::int64_t j = block_cols; j < cols; ++j)
    for (std::int64_t i = 0; i < block_rows; ++i)
      to[j * to_stride + i] = convert(from[i * from_stride + j]);
}

void linear_columns(const kernel::Preparation& preparation, const PackedWeights& w,
                    const std::int32_t* x, std::int64_t batch, const kernel::Outputs& y) {
  const kernel::Plan& plan = preparation.plan;
  const std::int64_t width = kernel::column_width(batch), cols = w.cols;
  // Written in full before they are read (the column loops write every sum): no zero-filling
  // but of xt's lanes past the batch.
  const auto xt =
      std::make_unique_for_overwrite<std::int32_t[]>(static_cast<std::size_t>(cols * width));
  const std::int64_t sums_size = w.rows * width;
  const bool halves = plan.accumulator == Accumulator::int32_halves;
  const auto sums = std::make_unique_for_overwrite<std::int64_t[]>(
      static_cast<std::size_t>(halves ? 2 * sums_size : sums_size));
  const bool parallel = kernel::worth_threads(w.rows * cols * batch);
  const std::int64_t chunk = kernel::row_chunk(w.rows, parallel);
  constexpr std::int64_t kInputsPerPiece = 64;
#pragma omp parallel if (parallel)
  {
    // The values are captured by copy: captured by reference they would be reloaded after every
    // store, which may alias them.
#pragma omp for schedule(static)
    for (std::int64_t first = 0; first < cols; first += kInputsPerPiece) {
      const std::int64_t inputs = std::min(kInputsPerPiece, cols - first);
      std::int32_t* to = xt.get() + first * width;
      transpose(x + first, cols, batch, inputs, to, width, std::identity{});
      for (std::int64_t i = 0; i < inputs; ++i)
        std::fill(to + i * width + batch, to + (i + 1) * width, 0);
    }
#pragma omp for schedule(dynamic)
    for (std::int64_t begin = 0; begin < w.rows; begin += chunk) {
      const std::int64_t end = std::min(begin + chunk, w.rows);
      std::int64_t* task_sums = sums.get() + begin * width;
      kernel::ColumnTask task{kernel::code_rows(w, begin),
                              plan.lanes,
                              cols,
                              xt.get(),
                              width,
                              begin,
                              end,
                              task_sums,
                              width};
      kernel::point_at_lists(preparation, w, begin, task);
      kernel::run_columns(plan, task, task_sums + sums_size);
      // Finished in place, then moved to the outputs row by row of the batch.
      for (std::int64_t r = begin; r < end; ++r) {
        std::int64_t* row_sums = task_sums + (r - begin) * width;
        kernel::finish_row(w, r, row_sums, batch, {row_sums});
      }
      const auto move_out = [&](auto* to, auto convert) {
        transpose(task_sums, width, end - begin, batch, to + begin, w.rows, convert);
      };
      if (y.floats)
        move_out(y.floats,
                 [scale = y.scale](std::int64_t v) { return static_cast<float>(v) * scale; });
      else
        move_out(y.integers, std::identity{});
    }
  }
}

// linear_int into either form of output.
void linear_into(const PreparedWeights& prepared, const std::int32_t* x, std::int64_t batch,
                 const kernel::Outputs& y) {
  const PackedWeights& weights = prepared.weights();
  const LoopForm form = batch < kColumnBatch ? LoopForm::dot : LoopForm::columns;
  const kernel::Preparation& preparation = prepared.preparation_for(form, x, batch * weights.cols);
  if (preparation.plan.accumulator == Accumulator::wide)
    return linear_wide(weights, x, batch, prepared.format(), y);
  if (form == LoopForm::dot) {
    if (const std::uint8_t* tiles = preparation.table_tiles(weights))
      return linear_table(preparation.plan, weights, tiles, x, batch, y);
    return linear_dot(preparation.plan, weights, x, batch, y);
  }
  // Before the threads start, so that the lists are built by all of them.
  preparation.lists(weights);
  linear_columns(preparation, weights, x, batch, y);
}

}  // namespace

void linear_int(const PreparedWeights& prepared, const std::int32_t* x, std::int64_t batch,
                std::int64_t* y) {
  linear_into(prepared, x, batch, {y});
}

void linear_int(const PreparedWeights& prepared, const std::int32_t* x, std::int64_t batch,
                float* y, int fraction) {
  linear_into(prepared, x, batch, kernel::Outputs::as_floats(y, fraction));
}

void linear_int(const PackedWeights& weights, const std::int32_t* x, std::int64_t batch,
                const ActivationFormat& format, std::int64_t* y, KernelPath path) {
  linear_int(PreparedWeights(kernel::borrow(weights), format, path), x, batch, y);
}

}  // namespace ds::shift
