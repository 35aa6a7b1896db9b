#pragma once
// Files written whole or not at all: through `<path>.tmp`, flushed and synced to disk, then
// renamed over `path`, so that `path` holds either its old content or the complete new file; a
// failure, or a crash before the rename, keeps the old one. SIGINT, SIGTERM and SIGHUP arriving
// meanwhile are held until the rename and then take their course, so that stopping a program
// leaves no `<path>.tmp`; a second one during the same write takes its course at once (a write
// hanging on a slow disk can still be stopped). The weights files and the trainers' logs and
// records are written this way.
#include <cstdio>
#include <functional>
#include <string>

namespace ds::nn {

// Calls write(file, temp) on the temporary file `temp`; errors name `path` as `what` (e.g.
// "weights file 'x'") and give the system's reason.
void write_file_atomically(
    const std::string& path, const std::string& what,
    const std::function<void(std::FILE* file, const std::string& temp)>& write);

// Appends size bytes to a file being written as above, failing with the system's reason.
void write_bytes(std::FILE* file, const void* data, std::size_t size, const std::string& temp);

// A text file, written as above.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace ds::nn
