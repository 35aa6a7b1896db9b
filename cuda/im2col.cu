// im2col / col2im on the GPU. im2col gives each thread one column element; col2im gives each
// thread one image pixel, which gathers its taps in tap order: no atomics, and the same sum in
// the same order as the CPU's scatter, so the two agree bit for bit.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"

namespace ds::cuda {

namespace {

// Kernel-side copy of the geometry (plain ints: the host structs are not device types).
struct Geometry {
  std::int64_t batch, channels, height, width, out_h, out_w;
  std::int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

Geometry geometry_of(const ImageGeometry& g, const Window& w) {
  return {g.batch,    g.channels, g.height,   g.width, g.out_h, g.out_w,      w.kernel_h,
          w.kernel_w, w.stride_h, w.stride_w, w.pad_h, w.pad_w, w.dilation_h, w.dilation_w};
}

// Index is int32_t when every index of the launch fits it (64-bit division costs several times
// more on a GPU, and these kernels divide several times per element), else int64_t.
template <typename T, typename Index>
__global__ void im2col_kernel(const T* image, Geometry g, T pad, T* columns) {
  const auto positions = static_cast<Index>(g.out_h * g.out_w);
  const auto taps = static_cast<Index>(g.kernel_h * g.kernel_w);
  const Index total = static_cast<Index>(g.batch * g.channels) * taps * positions;
  const auto out_w = static_cast<Index>(g.out_w), kernel_w = static_cast<Index>(g.kernel_w);
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    // columns is [N, C * taps, positions]: i = ((n * C + c) * taps + tap) * positions + p
    const Index p = i % positions;
    const Index tap = (i / positions) % taps;
    const Index plane = i / (positions * taps);  // n * C + c
    const Index oh = p / out_w, ow = p % out_w;
    const Index ih = oh * static_cast<Index>(g.stride_h) - static_cast<Index>(g.pad_h) +
                     (tap / kernel_w) * static_cast<Index>(g.dilation_h);
    const Index iw = ow * static_cast<Index>(g.stride_w) - static_cast<Index>(g.pad_w) +
                     (tap % kernel_w) * static_cast<Index>(g.dilation_w);
    const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
    columns[i] =
        inside ? image[(static_cast<std::int64_t>(plane) * g.height + ih) * g.width + iw] : pad;
  }
}

template <typename T, typename Index>
__global__ void col2im_kernel(const T* columns, Geometry g, T* image) {
  const auto positions = static_cast<Index>(g.out_h * g.out_w);
  const auto taps = static_cast<Index>(g.kernel_h * g.kernel_w);
  const Index total = static_cast<Index>(g.batch * g.channels * g.height * g.width);
  const auto width = static_cast<Index>(g.width), height = static_cast<Index>(g.height);
  const auto out_h = static_cast<Index>(g.out_h), out_w = static_cast<Index>(g.out_w);
  const auto stride_h = static_cast<Index>(g.stride_h), stride_w = static_cast<Index>(g.stride_w);
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const Index w = i % width;
    const Index h = (i / width) % height;
    const Index plane = i / (width * height);
    const T* plane_columns = columns + static_cast<std::int64_t>(plane) * taps * positions;
    T sum = image[i];
    for (Index ki = 0; ki < g.kernel_h; ++ki) {
      const Index y = h + static_cast<Index>(g.pad_h) - ki * static_cast<Index>(g.dilation_h);
      if (y < 0 || y % stride_h != 0 || y / stride_h >= out_h) continue;
      const Index oh = y / stride_h;
      for (Index kj = 0; kj < g.kernel_w; ++kj) {
        const Index x = w + static_cast<Index>(g.pad_w) - kj * static_cast<Index>(g.dilation_w);
        if (x < 0 || x % stride_w != 0 || x / stride_w >= out_w) continue;
        const Index tap = ki * static_cast<Index>(g.kernel_w) + kj;
        sum += plane_columns[tap * positions + oh * out_w + x / stride_w];
      }
    }
    image[i] = sum;
  }
}

// Runs fn(Index{}) with int32_t when every index of a launch over `total` elements (and of the
// columns it reads or writes, `columns` elements) fits it with room for the grid-stride step.
template <typename Fn>
void with_index_type(std::int64_t total, std::int64_t columns, Fn fn) {
  if (std::max(total, columns) < (std::int64_t{1} << 30))
    fn(std::int32_t{});
  else
    fn(std::int64_t{});
}

}  // namespace

void launch_im2col(DType type, const void* image, const ImageGeometry& geometry,
                   const Window& window, double pad_value, void* columns, cudaStream_t stream) {
  const Geometry g = geometry_of(geometry, window);
  const std::int64_t total = g.batch * g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
  if (total == 0) return;
  const auto launch = [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_index_type(total, total, [&](auto index) {
      im2col_kernel<T, decltype(index)><<<blocks_for(total), kThreads, 0, stream>>>(
          static_cast<const T*>(image), g, static_cast<T>(pad_value), static_cast<T*>(columns));
    });
    check_launch("im2col kernel");
  };
  // im2col only copies values, so it also unfolds the shift kernels' int32 fixed-point images.
  if (type == DType::i32)
    launch(TypeTag<std::int32_t>{});
  else
    dispatch_floating(type, "im2col", launch);
}

void launch_col2im(DType type, const void* columns, const ImageGeometry& geometry,
                   const Window& window, void* image, cudaStream_t stream) {
  const Geometry g = geometry_of(geometry, window);
  const std::int64_t total = g.batch * g.channels * g.height * g.width;
  if (total == 0) return;
  dispatch_floating(type, "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::int64_t columns_total =
        g.batch * g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
    with_index_type(total, columns_total, [&](auto index) {
      col2im_kernel<T, decltype(index)><<<blocks_for(total), kThreads, 0, stream>>>(
          static_cast<const T*>(columns), g, static_cast<T*>(image));
    });
    check_launch("col2im kernel");
  });
}

}  // namespace ds::cuda
