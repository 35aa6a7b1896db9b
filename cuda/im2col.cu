// im2col / col2im on the GPU. im2col gives each thread one column element; col2im gives each
// thread one image pixel, which gathers its taps in tap order: no atomics, and the same sum in
// the same order as the CPU's scatter, so the two agree bit for bit.
#include <cuda_runtime.h>

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

template <typename T>
__global__ void im2col_kernel(const T* image, Geometry g, T pad, T* columns) {
  const std::int64_t positions = g.out_h * g.out_w;
  const std::int64_t taps = g.kernel_h * g.kernel_w;
  const std::int64_t total = g.batch * g.channels * taps * positions;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    // columns is [N, C * taps, positions]: i = ((n * C + c) * taps + tap) * positions + p
    const std::int64_t p = i % positions;
    const std::int64_t tap = (i / positions) % taps;
    const std::int64_t plane = i / (positions * taps);  // n * C + c
    const std::int64_t oh = p / g.out_w, ow = p % g.out_w;
    const std::int64_t ih = oh * g.stride_h - g.pad_h + (tap / g.kernel_w) * g.dilation_h;
    const std::int64_t iw = ow * g.stride_w - g.pad_w + (tap % g.kernel_w) * g.dilation_w;
    const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
    columns[i] = inside ? image[(plane * g.height + ih) * g.width + iw] : pad;
  }
}

template <typename T>
__global__ void col2im_kernel(const T* columns, Geometry g, T* image) {
  const std::int64_t positions = g.out_h * g.out_w;
  const std::int64_t taps = g.kernel_h * g.kernel_w;
  const std::int64_t total = g.batch * g.channels * g.height * g.width;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const std::int64_t w = i % g.width;
    const std::int64_t h = (i / g.width) % g.height;
    const std::int64_t plane = i / (g.width * g.height);
    const T* plane_columns = columns + plane * taps * positions;
    T sum = image[i];
    for (std::int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const std::int64_t y = h + g.pad_h - ki * g.dilation_h;  // = oh * stride_h
      if (y < 0 || y % g.stride_h != 0 || y / g.stride_h >= g.out_h) continue;
      const std::int64_t oh = y / g.stride_h;
      for (std::int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const std::int64_t x = w + g.pad_w - kj * g.dilation_w;
        if (x < 0 || x % g.stride_w != 0 || x / g.stride_w >= g.out_w) continue;
        const std::int64_t tap = ki * g.kernel_w + kj;
        sum += plane_columns[tap * positions + oh * g.out_w + x / g.stride_w];
      }
    }
    image[i] = sum;
  }
}

}  // namespace

void launch_im2col(DType type, const void* image, const ImageGeometry& geometry,
                   const Window& window, double pad_value, void* columns, cudaStream_t stream) {
  const Geometry g = geometry_of(geometry, window);
  const std::int64_t total = g.batch * g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
  if (total == 0) return;
  dispatch_floating(type, "im2col", [&](auto tag) {
    using T = typename decltype(tag)::type;
    im2col_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<const T*>(image), g, static_cast<T>(pad_value), static_cast<T*>(columns));
    check_launch("im2col kernel");
  });
}

void launch_col2im(DType type, const void* columns, const ImageGeometry& geometry,
                   const Window& window, void* image, cudaStream_t stream) {
  const Geometry g = geometry_of(geometry, window);
  const std::int64_t total = g.batch * g.channels * g.height * g.width;
  if (total == 0) return;
  dispatch_floating(type, "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    col2im_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(static_cast<const T*>(columns), g,
                                                                 static_cast<T*>(image));
    check_launch("col2im kernel");
  });
}

}  // namespace ds::cuda
