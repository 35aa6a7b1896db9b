#include "data/file_bytes.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "tensor/error.hpp"

namespace ds::data {

std::string read_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) fail(path, ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(path, ": read error");
  return bytes;
}

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string gunzip(std::string_view bytes, const std::string& name, std::size_t max_bytes) {
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip header and trailer, not a raw zlib stream.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) fail(name, ": cannot start zlib");
  std::string out;
  std::size_t consumed = 0;
  int status = Z_OK;
  for (;;) {
    if (status == Z_STREAM_END) {
      const std::string_view rest = bytes.substr(consumed);
      if (std::all_of(rest.begin(), rest.end(), [](char c) { return c == 0; })) break;
      if (!is_gzip(rest)) {
        inflateEnd(&stream);
        fail(name, ": ", rest.size(), " bytes that are not gzip data follow the gzip stream (at ",
             "byte ", consumed, ")");
      }
      inflateReset(&stream);
    }
    if (out.size() >= max_bytes) {
      inflateEnd(&stream);
      fail(name, ": gzip data inflates to more than ", max_bytes, " bytes");
    }
    // zlib counts in uInt, so feed and drain at most 1 GiB per call.
    const std::size_t in_chunk = std::min<std::size_t>(bytes.size() - consumed, 1u << 30);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_chunk);
    const std::size_t old_size = out.size();
    const std::size_t grow = std::min<std::size_t>(
        {std::max<std::size_t>(old_size, 1u << 16), 1u << 30, max_bytes - old_size});
    out.resize(old_size + grow);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + old_size);
    stream.avail_out = static_cast<uInt>(grow);
    status = inflate(&stream, Z_NO_FLUSH);
    consumed += in_chunk - stream.avail_in;
    out.resize(old_size + grow - stream.avail_out);
    if (status == Z_BUF_ERROR && consumed == bytes.size() && stream.avail_out != 0) {
      inflateEnd(&stream);
      fail(name, ": truncated gzip data (the stream ends after ", bytes.size(), " bytes)");
    }
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
      const std::string reason = stream.msg ? stream.msg : "unknown zlib error";
      inflateEnd(&stream);
      fail(name, ": corrupt gzip data (", reason, ")");
    }
  }
  inflateEnd(&stream);
  return out;
}

}  // namespace ds::data
