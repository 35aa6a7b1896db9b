#pragma once
// Whole-file reads and gzip inflation for the dataset readers. Every failure throws ds::Error
// naming the file, so that a broken download is reported as such instead of as a crash.
#include <cstddef>
#include <string>
#include <string_view>

namespace ds::data {

// The file's bytes. Throws when the path is missing, is a directory or cannot be read.
std::string read_file(const std::string& path);

// True when `bytes` starts with the gzip magic number (1f 8b).
bool is_gzip(std::string_view bytes);

// Inflates gzip data; as gzip(1) does, several members (`cat a.gz b.gz`) inflate to their
// contents end to end, and zero bytes after the last (padding) are ignored. `name` names the
// source in messages. Throws on a corrupt or truncated stream, on other bytes after the last
// member, and when the output would exceed `max_bytes` (a guard against gzip bombs).
std::string gunzip(std::string_view bytes, const std::string& name,
                   std::size_t max_bytes = std::size_t{1} << 32);

}  // namespace ds::data
