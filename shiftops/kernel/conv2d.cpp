// Integer shift convolution, item by item (a few images of one group side by side, or a band of
// output rows of a large image): the column form of the loops with the output positions as
// vector lanes, on the item's integer im2col or, for a stride-1 convolution as wide as its
// input, on its inputs read straight from the image (zero padding is exact: the float path pads
// the fixed-point input with zeros too).
#include <algorithm>
#include <array>
#include <bit>
#include <optional>
#include <vector>

#include "shiftops/kernel/plan.hpp"
#include "tensor/cpu/im2col.hpp"

namespace ds::shift {

std::int64_t ConvGeometry::out_h() const {
  return Window::positions_along(height + 2 * params.pad_h - params.dilation_h * (kernel_h - 1) - 1,
                                 params.stride_h);
}

std::int64_t ConvGeometry::out_w() const {
  return Window::positions_along(width + 2 * params.pad_w - params.dilation_w * (kernel_w - 1) - 1,
                                 params.stride_w);
}

void ConvGeometry::validate(const PackedWeights& weights) const {
  const auto& p = params;
  if (batch < 0 || channels < 1 || height < 1 || width < 1 || kernel_h < 1 || kernel_w < 1 ||
      p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0 || p.dilation_h < 1 ||
      p.dilation_w < 1 || p.groups < 1)
    fail("shift conv2d: invalid geometry (input ", batch, "x", channels, "x", height, "x", width,
         ", kernel ", kernel_h, "x", kernel_w, ", groups ", p.groups, ")");
  if (channels % p.groups != 0 || weights.rows % p.groups != 0)
    fail("shift conv2d: ", channels, " input and ", weights.rows,
         " output channels do not divide into ", p.groups, " groups");
  if (weights.cols != channels / p.groups * kernel_h * kernel_w)
    fail("shift conv2d: packed weights have ", weights.cols, " columns; ", channels / p.groups,
         " channels per group with a ", kernel_h, "x", kernel_w, " kernel need ",
         channels / p.groups * kernel_h * kernel_w);
  if (out_h() < 1 || out_w() < 1)
    fail("shift conv2d: a ", height, "x", width, " input gives no output with kernel ", kernel_h,
         "x", kernel_w);
}

kernel::ConvItems kernel::conv_items(const ConvGeometry& g, const PackedWeights& w,
                                     Accumulator accumulator) {
  const std::int64_t row_bytes = accumulator == Accumulator::int32_halves ? 16 : 8;
  const std::int64_t lane_bytes = 4 * w.cols + row_bytes * (w.rows / g.params.groups);
  const std::int64_t lanes = std::max(kItemBytes / lane_bytes, kMinItemLanes);
  const std::int64_t out_h = g.out_h(), out_w = g.out_w();
  if (lanes >= out_h * out_w)
    return {
        std::clamp<std::int64_t>(lanes / (out_h * out_w), 1, std::max<std::int64_t>(1, g.batch)),
        out_h, 1};
  // Bands of nearly equal height (the last at most bands - 1 rows shorter), rather than full
  // bands and a thin last one.
  const std::int64_t most_rows = std::max<std::int64_t>(lanes / out_w, 1);
  const std::int64_t bands = (out_h + most_rows - 1) / most_rows;
  return {1, (out_h + bands - 1) / bands, bands};
}

namespace {

// One item: images [first_image, first_image + images) of one group, output rows `band` of each.
struct Item {
  std::int64_t first_image, images;
  cpu::PlaneWindow::Span band;
  std::int64_t group;
  // An image's lanes in the item: its output positions in the band.
  std::int64_t band_positions(const ConvGeometry& g) const {
    return (band.end - band.begin) * g.out_w();
  }
};

// Per-thread scratch reused across calls (a fresh zero-filled vector per item cost as much as
// the im2col itself), taken as pointers: inside the OpenMP region of conv_item, a thread_local
// would name the worker's own.
template <typename T>
T* scratch(std::vector<T>& buffer, std::int64_t size) {
  buffer.resize(std::max(buffer.size(), static_cast<std::size_t>(size)));
  return buffer.data();
}

// The float path's im2col of the item's band, `width` lanes to a row:
// cols[(c * kh + r) * kw + s][j * band_positions + (oy - band.begin) * ow + ox]. im2col writes
// every lane of an image; only the lanes past the last image's positions are zeroed here.
const std::int32_t* unfold_item(const std::int32_t* x, const ConvGeometry& g,
                                const cpu::PlaneWindow& window, const Item& item,
                                std::int64_t inputs, std::int64_t width) {
  thread_local std::vector<std::int32_t> cols_scratch;
  std::int32_t* const cols = scratch(cols_scratch, inputs * width);
  const std::int64_t group_channels = g.channels / g.params.groups;
  const std::int64_t taps = g.kernel_h * g.kernel_w;
  const std::int64_t band_positions = item.band_positions(g);
  for (std::int64_t j = 0; j < item.images; ++j)
    for (std::int64_t c = 0; c < group_channels; ++c)
      window.unfold(x + ((item.first_image + j) * g.channels + item.group * group_channels + c) *
                            g.height * g.width,
                    0, cols + c * taps * width + j * band_positions, width, item.band);
  const std::int64_t lanes = item.images * band_positions;
  for (std::int64_t i = 0; i < inputs; ++i)
    std::fill(cols + i * width + lanes, cols + (i + 1) * width, 0);
  return cols;
}

// The tables of kernel::ImageInputs for an item: a stride-1 convolution as wide as its input
// reads its inputs straight from the image, which saves the im2col (12% of a resnet20 inference
// through the kernel) and its second pass over the values.
struct ImageTables {
  std::vector<std::int64_t> tap_offsets, unit_offsets;
  std::vector<std::uint16_t> masks;
  kernel::ImageInputs inputs;
  // The geometry and item shape the tables hold (all but the planes' address).
  std::optional<std::array<std::int64_t, 15>> filled_for;
};

// Whether the item's inputs can be read from the image: the window reads runs of the plane, and
// each 16-lane unit of the lanes lies within one image.
bool reads_image(const cpu::PlaneWindow& window, const Item& item, std::int64_t band_positions) {
  return window.rows_are_runs() && (item.images == 1 || band_positions % 16 == 0);
}

void fill_image_tables(const std::int32_t* planes, const ConvGeometry& g,
                       const cpu::PlaneWindow& window, const Item& item, std::int64_t width,
                       const std::array<std::int64_t, 15>& shape, ImageTables& tables) {
  const std::int64_t out_w = g.out_w(), plane_size = g.height * g.width;
  // Forgotten until the tables are whole again: an allocation below may throw.
  tables.filled_for.reset();
  const std::int64_t band_positions = item.band_positions(g);
  const std::int64_t taps = g.kernel_h * g.kernel_w;
  // The plane offsets the taps read, and the output rows (columns) that read inside the plane
  // through each kernel row (column).
  using Span = cpu::PlaneWindow::Span;
  tables.tap_offsets.clear();
  std::vector<Span> inside_rows, inside_cols;
  for (std::int64_t r = 0; r < g.kernel_h; ++r)
    for (std::int64_t c = 0; c < g.kernel_w; ++c) {
      const cpu::PlaneWindow::Reach reach = window.reach(r, c);
      tables.tap_offsets.push_back(reach.input);
      if (c == 0) inside_rows.push_back(reach.rows);
      if (r == 0) inside_cols.push_back(reach.cols);
    }
  const std::int64_t units = width / 16;
  tables.unit_offsets.assign(static_cast<std::size_t>(units), 0);
  tables.masks.assign(static_cast<std::size_t>(units * taps), 0);
  // Per unit, the lanes whose output row reads inside the plane through each kernel row, and
  // those whose output column does through each kernel column: a tap's mask is the and of its
  // row's and its column's (a test per lane and tap cost 15% of a resnet20 inference).
  std::vector<std::uint16_t> row_masks(static_cast<std::size_t>(g.kernel_h)),
      col_masks(static_cast<std::size_t>(g.kernel_w));
  // With several images to the item, each unit of an image lies where the first image's unit
  // at the same place does (band_positions % 16 == 0, reads_image) and takes its masks.
  const std::int64_t image_units = item.images == 1 ? units : band_positions / 16;
  for (std::int64_t u = 0; u < units; ++u) {
    const std::int64_t image = u / image_units;
    const std::int64_t within = u * 16 - image * band_positions;
    tables.unit_offsets[u] = image * g.channels * plane_size + item.band.begin * out_w + within;
    if (image > 0) {
      for (std::int64_t tap = 0; tap < taps; ++tap)
        tables.masks[tap * units + u] = tables.masks[tap * units + u - image * image_units];
      continue;
    }
    std::fill(row_masks.begin(), row_masks.end(), 0);
    std::fill(col_masks.begin(), col_masks.end(), 0);
    std::int64_t oy = item.band.begin + within / out_w, ox = within % out_w;
    for (std::int64_t l = 0; l < 16 && within + l < band_positions; ++l) {
      const auto bit = static_cast<std::uint16_t>(1u << l);
      for (std::int64_t r = 0; r < g.kernel_h; ++r)
        if (oy >= inside_rows[r].begin && oy < inside_rows[r].end) row_masks[r] |= bit;
      for (std::int64_t c = 0; c < g.kernel_w; ++c)
        if (ox >= inside_cols[c].begin && ox < inside_cols[c].end) col_masks[c] |= bit;
      if (++ox == out_w) ox = 0, ++oy;
    }
    std::uint16_t* masks = tables.masks.data() + u;
    for (std::int64_t r = 0; r < g.kernel_h; ++r)
      for (std::int64_t c = 0; c < g.kernel_w; ++c, masks += units)
        *masks = row_masks[r] & col_masks[c];
  }
  tables.filled_for = shape;
  tables.inputs = {planes,
                   plane_size,
                   taps,
                   units,
                   tables.tap_offsets.data(),
                   tables.unit_offsets.data(),
                   tables.masks.data()};
}

// A thread's tables for the item shapes it met last. Filling the masks lane by lane costs about
// 50 us; a network's layers take turns, and one set of tables, refilled for each layer's shape,
// cost 2.5% of a resnet20 inference through the kernel.
class ImageTableCache {
 public:
  const kernel::ImageInputs& inputs_for(const std::int32_t* x, const ConvGeometry& g,
                                        const cpu::PlaneWindow& window, const Item& item,
                                        std::int64_t width) {
    const std::int64_t group_channels = g.channels / g.params.groups;
    const std::int32_t* const planes =
        x + (item.first_image * g.channels + item.group * group_channels) * g.height * g.width;
    const auto& p = g.params;
    const std::array<std::int64_t, 15> shape{
        g.channels,   g.height,    g.width,         g.kernel_h,    g.kernel_w,
        p.stride_h,   p.stride_w,  p.pad_h,         p.pad_w,       p.dilation_h,
        p.dilation_w, item.images, item.band.begin, item.band.end, width};
    for (ImageTables& tables : tables_)
      if (tables.filled_for == shape) {
        tables.inputs.planes = planes;
        return tables.inputs;
      }
    // A new shape takes the slots in turn.
    ImageTables& tables = tables_[next_];
    next_ = (next_ + 1) % tables_.size();
    fill_image_tables(planes, g, window, item, width, shape, tables);
    return tables.inputs;
  }

 private:
  std::array<ImageTables, 16> tables_;
  std::size_t next_ = 0;
};

// The item's output rows of its group, for each of its images side by side in the lanes.
void conv_item(const kernel::Preparation& preparation, const PackedWeights& w,
               const std::int32_t* x, const ConvGeometry& g, const cpu::PlaneWindow& window,
               const Item& item, bool parallel_rows, const kernel::Outputs& y) {
  const kernel::Plan& plan = preparation.plan;
  const std::int64_t group_rows = w.rows / g.params.groups;
  const std::int64_t positions = g.out_h() * g.out_w();
  const std::int64_t band_positions = item.band_positions(g);
  const std::int64_t lanes = item.images * band_positions, width = kernel::column_width(lanes);
  const std::int64_t first = item.group * group_rows;
  // Where the band of output row `first + r` of image first_image + j starts; its positions are
  // lanes j * band_positions to (j + 1) * band_positions.
  const auto output = [&](std::int64_t r, std::int64_t j) {
    return ((item.first_image + j) * w.rows + first + r) * positions + item.band.begin * g.out_w();
  };
  // The wide plan runs no loops: it reads the column matrix itself.
  if (plan.accumulator == Accumulator::wide) {
    const std::int32_t* const cols = unfold_item(x, g, window, item, w.cols, width);
    std::vector<std::int64_t> buckets(static_cast<std::size_t>(w.max_k) + 1);
    for (std::int64_t r = 0; r < group_rows; ++r)
      for (std::int64_t j = 0; j < item.images; ++j) {
        for (std::int64_t l = 0; l < band_positions; ++l)
          y.set(output(r, j) + l,
                kernel::wide_output(w, first + r, cols + j * band_positions + l, width,
                                    plan.lanes.is_unsigned, buckets.data()));
      }
    return;
  }
  thread_local ImageTableCache image_tables;
  const bool from_image = reads_image(window, item, band_positions);
  const std::int32_t* const cols =
      from_image ? nullptr : unfold_item(x, g, window, item, w.cols, width);
  const kernel::ImageInputs* const image =
      from_image ? &image_tables.inputs_for(x, g, window, item, width) : nullptr;
  // The second half of the sums holds the low halves' sums for the int32_halves accumulator.
  const bool halves = plan.accumulator == Accumulator::int32_halves;
  const std::int64_t sums_size = group_rows * width;
  thread_local std::vector<std::int64_t> sums_scratch;
  std::int64_t* const sums = scratch(sums_scratch, halves ? 2 * sums_size : sums_size);
  // Row r's sums of lanes [lane, lane + count) into the outputs, image by image; lanes past the
  // item's images are padding.
  const auto finish_lanes = [&](std::int64_t r, std::int64_t lane, const std::int64_t* lane_sums,
                                std::int64_t count) {
    const std::int64_t end = std::min(lane + count, lanes);
    for (std::int64_t l = lane; l < end;) {
      const std::int64_t j = l / band_positions;
      const std::int64_t run = std::min(end, (j + 1) * band_positions) - l;
      kernel::finish_row(w, first + r, lane_sums + (l - lane), run,
                         y.from(output(r, j) + l - j * band_positions));
      l += run;
    }
  };
  // With int32 blocks the loops hand each row's last segment straight to finish_lanes (the
  // halves are finished only once both have run).
  const bool finish_in_loops = !halves;
  using FinishLanes = decltype(finish_lanes);
  const kernel::ColumnTask::Finish finish{[](const void* context, std::int64_t r, std::int64_t lane,
                                             const std::int64_t* lane_sums, std::int64_t count) {
                                            (*static_cast<const FinishLanes*>(context))(
                                                r, lane, lane_sums, count);
                                          },
                                          &finish_lanes};
  const std::int64_t chunk = kernel::row_chunk(group_rows, parallel_rows);
#pragma omp parallel for schedule(dynamic) if (parallel_rows)
  for (std::int64_t begin = 0; begin < group_rows; begin += chunk) {
    const std::int64_t end = std::min(begin + chunk, group_rows);
    kernel::ColumnTask task{kernel::code_rows(w, first + begin),
                            plan.lanes,
                            w.cols,
                            cols,
                            width,
                            begin,
                            end,
                            sums + begin * width,
                            width};
    task.image = image;
    if (finish_in_loops) task.finish = finish;
    kernel::point_at_lists(preparation, w, first + begin, task);
    kernel::run_columns(plan, task, sums + sums_size + begin * width);
    if (!finish_in_loops)
      for (std::int64_t r = begin; r < end; ++r) finish_lanes(r, 0, sums + r * width, lanes);
  }
}

// conv2d_int into either form of output.
void conv_into(const PreparedWeights& prepared, const std::int32_t* x, const ConvGeometry& geometry,
               const kernel::Outputs& y) {
  const PackedWeights& weights = prepared.weights();
  geometry.validate(weights);
  const kernel::Preparation& preparation = prepared.preparation_for(
      LoopForm::columns, x, geometry.batch * geometry.channels * geometry.height * geometry.width);
  // Before the threads start, so that the lists are built by all of them.
  preparation.lists(weights);
  const kernel::ConvItems split =
      kernel::conv_items(geometry, weights, preparation.plan.accumulator);
  const std::int64_t groups = geometry.params.groups;
  const std::int64_t image_items = (geometry.batch + split.images - 1) / split.images;
  const std::int64_t items = image_items * split.bands * groups;
  const bool parallel = kernel::worth_threads(geometry.batch * weights.rows * weights.cols *
                                              geometry.out_h() * geometry.out_w());
  const auto& p = geometry.params;
  const cpu::PlaneWindow window(geometry.height, geometry.width,
                                {geometry.kernel_h, geometry.kernel_w, p.stride_h, p.stride_w,
                                 p.pad_h, p.pad_w, p.dilation_h, p.dilation_w});
  const auto run = [&](std::int64_t index, bool parallel_rows) {
    const std::int64_t band = index / groups % split.bands;
    const std::int64_t first_image = index / groups / split.bands * split.images;
    const std::int64_t band_begin = band * split.band_rows;
    const Item item{first_image,
                    std::min(split.images, geometry.batch - first_image),
                    {band_begin, std::min(band_begin + split.band_rows, geometry.out_h())},
                    index % groups};
    conv_item(preparation, weights, x, geometry, window, item, parallel_rows, y);
  };
  // Enough items keep both cores busy on whole items; otherwise split the rows.
  if (items >= 2) {
#pragma omp parallel for schedule(dynamic) if (parallel)
    for (std::int64_t index = 0; index < items; ++index) run(index, false);
    return;
  }
  for (std::int64_t index = 0; index < items; ++index) run(index, parallel);
}

}  // namespace

void conv2d_int(const PreparedWeights& prepared, const std::int32_t* x,
                const ConvGeometry& geometry, std::int64_t* y) {
  conv_into(prepared, x, geometry, {y});
}

void conv2d_int(const PreparedWeights& prepared, const std::int32_t* x,
                const ConvGeometry& geometry, float* y, int fraction) {
  conv_into(prepared, x, geometry, kernel::Outputs::as_floats(y, fraction));
}

void conv2d_int(const PackedWeights& weights, const std::int32_t* x, const ConvGeometry& geometry,
                const ActivationFormat& format, std::int64_t* y, KernelPath path) {
  conv2d_int(PreparedWeights(kernel::borrow(weights), format, path), x, geometry, y);
}

}  // namespace ds::shift
