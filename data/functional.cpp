#include "data/functional.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/error.hpp"

namespace ds::data {
namespace {

// The images these functions accept, as a contiguous [C, H, W] tensor.
Tensor checked_image(const Tensor& image, const char* op) {
  if (!image.defined() || image.dim() != 3) {
    fail(op, ": expects an image [C, H, W], got ",
         image.defined() ? describe(image) : "an undefined tensor");
  }
  if (image.dtype() != DType::u8 && image.dtype() != DType::f32) {
    fail(op, ": expects a u8 or f32 image, got ", describe(image));
  }
  return image.contiguous();
}

void check_positive(std::int64_t height, std::int64_t width, const char* op) {
  if (height <= 0 || width <= 0) {
    fail(op, ": output size must be positive, got ", height, "x", width);
  }
}

// One output coordinate's two source neighbours and weights, as PyTorch's
// compute_indices_weights_linear (align_corners=False).
struct Tap {
  std::int64_t index;
  std::int64_t next;  // index + 1, or index at the last row/column
  float weight_index;
  float weight_next;
};

std::vector<Tap> bilinear_taps(std::int64_t in_size, std::int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<Tap> taps(out_size);
  for (std::int64_t i = 0; i < out_size; ++i) {
    const float source = std::max(scale * (static_cast<float>(i) + 0.5f) - 0.5f, 0.0f);
    const auto index = std::min(static_cast<std::int64_t>(std::floor(source)), in_size - 1);
    const float lambda = std::clamp(source - static_cast<float>(index), 0.0f, 1.0f);
    taps[i] = {index, index + (index < in_size - 1 ? 1 : 0), 1.0f - lambda, lambda};
  }
  return taps;
}

template <typename T>
T from_float(float value) {
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else {
    return static_cast<T>(std::clamp(std::nearbyint(value), 0.0f, 255.0f));
  }
}

template <typename T>
void resize_planes(const T* in, T* out, std::int64_t channels, std::int64_t in_h, std::int64_t in_w,
                   std::int64_t out_h, std::int64_t out_w) {
  const std::vector<Tap> rows = bilinear_taps(in_h, out_h);
  const std::vector<Tap> cols = bilinear_taps(in_w, out_w);
  for (std::int64_t c = 0; c < channels; ++c) {
    const T* plane = in + c * in_h * in_w;
    for (std::int64_t y = 0; y < out_h; ++y) {
      const T* top = plane + rows[y].index * in_w;
      const T* bottom = plane + rows[y].next * in_w;
      for (std::int64_t x = 0; x < out_w; ++x) {
        const Tap& col = cols[x];
        // The same association as PyTorch's Interpolate<2>: rows of columns.
        const float upper = static_cast<float>(top[col.index]) * col.weight_index +
                            static_cast<float>(top[col.next]) * col.weight_next;
        const float lower = static_cast<float>(bottom[col.index]) * col.weight_index +
                            static_cast<float>(bottom[col.next]) * col.weight_next;
        *out++ = from_float<T>(upper * rows[y].weight_index + lower * rows[y].weight_next);
      }
    }
  }
}

template <typename T>
void flip_rows(const T* in, T* out, std::int64_t rows, std::int64_t width) {
  for (std::int64_t r = 0; r < rows; ++r, in += width, out += width) {
    std::reverse_copy(in, in + width, out);
  }
}

}  // namespace

Tensor to_float_image(const Tensor& image) {
  if (!image.defined() || image.dtype() != DType::u8 || (image.dim() != 2 && image.dim() != 3)) {
    fail("to_float_image: expects a u8 image [C, H, W] or [H, W], got ",
         image.defined() ? describe(image) : "an undefined tensor");
  }
  const Tensor source = (image.dim() == 2 ? image.unsqueeze(0) : image).contiguous();
  Tensor out = Tensor::empty(source.shape(), DType::f32);
  const std::uint8_t* in = source.data<std::uint8_t>();
  float* values = out.data<float>();
  // The count read once: numel() in the condition was a call per pixel and kept the loop scalar
  // (building batches took a third of the main thread's time in an MNIST FC epoch with -j 0).
  const std::int64_t count = source.numel();
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) values[i] = static_cast<float>(in[i]) / 255.0f;
  return out;
}

Tensor normalize(const Tensor& image, const std::vector<float>& mean,
                 const std::vector<float>& std) {
  const Tensor source = checked_image(image, "normalize");
  if (source.dtype() != DType::f32) {
    fail("normalize: expects an f32 image (apply to_tensor first), got ", describe(image));
  }
  const std::int64_t channels = source.size(0);
  const auto fits = [&](const std::vector<float>& values) {
    return values.size() == 1 || static_cast<std::int64_t>(values.size()) == channels;
  };
  if (!fits(mean) || !fits(std)) {
    fail("normalize: mean and std need 1 or ", channels, " values, got ", mean.size(), " and ",
         std.size());
  }
  Tensor out = Tensor::empty(source.shape(), DType::f32);
  const float* in = source.data<float>();
  float* values = out.data<float>();
  const std::int64_t plane = source.size(1) * source.size(2);
  for (std::int64_t c = 0; c < channels; ++c) {
    const float m = mean[mean.size() == 1 ? 0 : c];
    const float s = std[std.size() == 1 ? 0 : c];
    const std::int64_t begin = c * plane, end = begin + plane;
    // GCC left the loop scalar without the pragma (it cannot tell `values` from `in`).
#pragma omp simd
    for (std::int64_t p = begin; p < end; ++p) values[p] = (in[p] - m) / s;
  }
  return out;
}

Tensor crop(const Tensor& image, std::int64_t top, std::int64_t left, std::int64_t height,
            std::int64_t width) {
  const Tensor source = checked_image(image, "crop");
  check_positive(height, width, "crop");
  const std::int64_t channels = source.size(0);
  const std::int64_t in_h = source.size(1);
  const std::int64_t in_w = source.size(2);
  // Zero bytes are zero in u8 and f32. A memset rather than Tensor::zeros keeps this off the
  // OpenMP pool: loader workers call it per sample.
  Tensor out = Tensor::empty({channels, height, width}, source.dtype());
  const std::size_t element = dtype_size(source.dtype());
  const auto* in = static_cast<const unsigned char*>(source.data_ptr());
  auto* values = static_cast<unsigned char*>(out.data_ptr());
  std::memset(values, 0, static_cast<std::size_t>(out.numel()) * element);
  // The part of the window that lies inside the image; the rest stays zero.
  const std::int64_t x0 = std::max<std::int64_t>(left, 0);
  const std::int64_t x1 = std::min(left + width, in_w);
  const std::int64_t y0 = std::max<std::int64_t>(top, 0);
  const std::int64_t y1 = std::min(top + height, in_h);
  if (x0 >= x1 || y0 >= y1) return out;
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t y = y0; y < y1; ++y) {
      const std::int64_t src = (c * in_h + y) * in_w + x0;
      const std::int64_t dst = (c * height + (y - top)) * width + (x0 - left);
      std::memcpy(values + dst * element, in + src * element, (x1 - x0) * element);
    }
  }
  return out;
}

Tensor pad(const Tensor& image, std::int64_t padding) {
  const Tensor source = checked_image(image, "pad");
  if (padding < 0) fail("pad: padding must be non-negative, got ", padding);
  return crop(source, -padding, -padding, source.size(1) + 2 * padding,
              source.size(2) + 2 * padding);
}

Tensor hflip(const Tensor& image) {
  const Tensor source = checked_image(image, "hflip");
  Tensor out = Tensor::empty(source.shape(), source.dtype());
  const std::int64_t rows = source.size(0) * source.size(1);
  if (source.dtype() == DType::u8) {
    flip_rows(source.data<std::uint8_t>(), out.data<std::uint8_t>(), rows, source.size(2));
  } else {
    flip_rows(source.data<float>(), out.data<float>(), rows, source.size(2));
  }
  return out;
}

Tensor resize(const Tensor& image, std::int64_t height, std::int64_t width) {
  const Tensor source = checked_image(image, "resize");
  check_positive(height, width, "resize");
  if (source.size(1) == 0 || source.size(2) == 0) {
    fail("resize: cannot resize an empty image ", describe(image));
  }
  Tensor out = Tensor::empty({source.size(0), height, width}, source.dtype());
  if (source.dtype() == DType::u8) {
    resize_planes(source.data<std::uint8_t>(), out.data<std::uint8_t>(), source.size(0),
                  source.size(1), source.size(2), height, width);
  } else {
    resize_planes(source.data<float>(), out.data<float>(), source.size(0), source.size(1),
                  source.size(2), height, width);
  }
  return out;
}

Tensor resize_shorter(const Tensor& image, std::int64_t size) {
  const Tensor source = checked_image(image, "resize_shorter");
  check_positive(size, size, "resize_shorter");
  const std::int64_t h = source.size(1);
  const std::int64_t w = source.size(2);
  if (h == 0 || w == 0) fail("resize_shorter: cannot resize an empty image ", describe(image));
  const std::int64_t shorter = std::min(h, w);
  const std::int64_t longer = std::max(h, w);
  const auto new_long =
      static_cast<std::int64_t>(static_cast<double>(size * longer) / static_cast<double>(shorter));
  return w <= h ? resize(source, new_long, size) : resize(source, size, new_long);
}

Tensor center_crop(const Tensor& image, std::int64_t height, std::int64_t width) {
  const Tensor source = checked_image(image, "center_crop");
  check_positive(height, width, "center_crop");
  const auto corner = [](std::int64_t in, std::int64_t out) -> std::int64_t {
    // Larger windows pad (out - in) / 2 before, the rest after.
    if (out > in) return -((out - in) / 2);
    return static_cast<std::int64_t>(std::nearbyint(static_cast<double>(in - out) / 2.0));
  };
  return crop(source, corner(source.size(1), height), corner(source.size(2), width), height, width);
}

Tensor resized_crop(const Tensor& image, std::int64_t top, std::int64_t left, std::int64_t height,
                    std::int64_t width, std::int64_t out_height, std::int64_t out_width) {
  return resize(crop(image, top, left, height, width), out_height, out_width);
}

}  // namespace ds::data
