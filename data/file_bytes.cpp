#include "data/file_bytes.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "tensor/error.hpp"

namespace ds::data {
namespace {

// zlib's inflate state, ended on every way out (inflateEnd ignores a state never started).
struct Inflater {
  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() { inflateEnd(&stream); }
  z_stream stream{};
};

// A first size for the output: a gzip member ends with its size modulo 2^32, so data that ends
// with a member inflates, if it is one member, without the buffer growing (each doubling zeroes
// and copies it). Capped at what deflate can expand the input to (1032:1) and at 64 MiB, so that
// a crafted trailer costs little; zlib checks the stated size against the data.
std::size_t stated_size(std::string_view bytes) {
  if (bytes.size() < 18) return 0;  // less than a gzip header and trailer
  const auto* tail = reinterpret_cast<const unsigned char*>(bytes.data() + bytes.size() - 4);
  const std::size_t stated = tail[0] | tail[1] << 8 | tail[2] << 16 | std::size_t{tail[3]} << 24;
  return std::min({stated, 1032 * bytes.size(), std::size_t{1} << 26});
}

}  // namespace

std::string read_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) fail(path, ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  // Large reads into a buffer sized from the file's size where it is known: a stream iterator,
  // which reads a character at a time, made MNIST's 26 MB a tenth of a trainer's start. A pipe,
  // a /proc file (size 0) or a file that grows meanwhile is read on to its end.
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  std::string bytes(error ? std::size_t{1} << 16 : std::max<std::size_t>(size + 1, 1u << 12), '\0');
  std::size_t filled = 0;
  for (;;) {
    in.read(bytes.data() + filled, static_cast<std::streamsize>(bytes.size() - filled));
    filled += static_cast<std::size_t>(in.gcount());
    if (!in) break;
    bytes.resize(2 * bytes.size());
  }
  if (in.bad()) fail(path, ": read error");
  bytes.resize(filled);
  return bytes;
}

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string gunzip(std::string_view bytes, const std::string& name, std::size_t max_bytes) {
  // One byte of room past the limit tells data over the limit from data exactly at it.
  const std::size_t capacity = max_bytes + (max_bytes < SIZE_MAX ? 1 : 0);
  std::string out(std::min(capacity, stated_size(bytes) + 1), '\0');
  Inflater inflater;
  z_stream& stream = inflater.stream;
  // 16 + MAX_WBITS: expect a gzip header and trailer, not a raw zlib stream.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) fail(name, ": cannot start zlib");
  const auto refuse = [&](const auto&... reason) { fail(name, ": ", reason...); };
  std::size_t filled = 0, consumed = 0;
  int status = Z_OK;
  for (;;) {
    if (status == Z_STREAM_END) {
      const std::string_view rest = bytes.substr(consumed);
      if (std::all_of(rest.begin(), rest.end(), [](char c) { return c == 0; })) break;
      if (!is_gzip(rest)) {
        refuse("data that is not gzip follows the last gzip member (", rest.size(),
               " bytes from byte ", consumed, ")");
      }
      inflateReset(&stream);
    }
    // Grown by doubling only when full: a file of many small members then costs no more
    // zeroing than one member of the same output.
    if (filled == out.size())
      out.resize(std::min(capacity, std::max<std::size_t>(2 * out.size(), 1u << 16)));
    // zlib counts in uInt, so feed and drain at most 1 GiB per call.
    const std::size_t in_chunk = std::min<std::size_t>(bytes.size() - consumed, 1u << 30);
    const std::size_t room = std::min<std::size_t>(out.size() - filled, 1u << 30);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_chunk);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + filled);
    stream.avail_out = static_cast<uInt>(room);
    status = inflate(&stream, Z_NO_FLUSH);
    consumed += in_chunk - stream.avail_in;
    filled += room - stream.avail_out;
    if (filled > max_bytes) refuse("gzip data inflates to more than ", max_bytes, " bytes");
    if (status == Z_BUF_ERROR && consumed == bytes.size() && stream.avail_out != 0)
      refuse("truncated gzip data (the stream ends after ", bytes.size(), " bytes)");
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR)
      refuse("corrupt gzip data (", stream.msg ? stream.msg : "unknown zlib error", ")");
  }
  out.resize(filled);
  return out;
}

}  // namespace ds::data
