#include "nn/io/atomic_file.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>

#include "tensor/error.hpp"

namespace ds::nn {
namespace {

constexpr std::array kStopSignals = {SIGINT, SIGTERM, SIGHUP};
// The dispositions found when a write began, put back when it ends or at a second stop.
std::array<struct sigaction, kStopSignals.size()> found_actions;
std::atomic<int> deferred_stop{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");

void restore_found_actions() {
  for (std::size_t i = 0; i < kStopSignals.size(); ++i)
    sigaction(kStopSignals[i], &found_actions[i], nullptr);
}

// The first stop request is recorded; a second one (Ctrl-C pressed again while a save hangs on
// a slow disk) takes its course at once, at the price of the `.tmp` file. sigaction and raise
// are safe in a handler; the signal raised here is blocked until the handler returns.
extern "C" void defer_stop(int signal) {
  if (deferred_stop.exchange(signal) == 0) return;
  deferred_stop.store(0);
  restore_found_actions();
  std::raise(signal);
}

// A stop request (Ctrl-C, kill, a closed terminal) that arrives while a file is being written
// waits until the file is complete and renamed, and is then acted on as it would have been.
// Acted on at once, its default action ends the process half way and leaves `<path>.tmp` behind.
// The handler is process-wide because a signal sent to the process may reach any of its threads.
// The request is raised again without its siginfo (sender, code).
class StopSignalsDeferred {
 public:
  StopSignalsDeferred() : lock_(mutex()) {
    deferred_stop.store(0);
    struct sigaction action {};
    action.sa_handler = defer_stop;
    sigfillset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (std::size_t i = 0; i < kStopSignals.size(); ++i)
      sigaction(kStopSignals[i], &action, &found_actions[i]);
  }
  ~StopSignalsDeferred() {
    restore_found_actions();
    if (const int signal = deferred_stop.exchange(0)) std::raise(signal);
  }
  StopSignalsDeferred(const StopSignalsDeferred&) = delete;
  StopSignalsDeferred& operator=(const StopSignalsDeferred&) = delete;

 private:
  // Writes from several threads take turns: one set of found dispositions at a time.
  static std::mutex& mutex() {
    static std::mutex instance;
    return instance;
  }
  std::lock_guard<std::mutex> lock_;
};

}  // namespace

void write_bytes(std::FILE* file, const void* data, std::size_t size, const std::string& temp) {
  if (size > 0 && std::fwrite(data, 1, size, file) != size)
    fail("cannot write '", temp, "': ", std::strerror(errno));
}

void write_file_atomically(
    const std::string& path, const std::string& what,
    const std::function<void(std::FILE* file, const std::string& temp)>& write) {
  const std::string temp = path + ".tmp";
  const StopSignalsDeferred stop_signals_deferred;
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) fail(what, ": cannot create '", temp, "': ", std::strerror(errno));
  const auto discard = [&] { std::remove(temp.c_str()); };
  try {
    write(file, temp);
    if (std::fflush(file) != 0) fail("cannot write '", temp, "': ", std::strerror(errno));
    // Devices that cannot be synced (EINVAL) have nothing to lose in a crash.
    if (::fsync(::fileno(file)) != 0 && errno != EINVAL)
      fail("cannot sync '", temp, "': ", std::strerror(errno));
  } catch (const std::exception& error) {
    std::fclose(file);
    discard();
    fail(what, ": ", error.what());
  }
  if (std::fclose(file) != 0) {
    discard();
    fail(what, ": cannot close '", temp, "': ", std::strerror(errno));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    discard();
    fail(what, ": cannot rename '", temp, "' onto it: ", error.message());
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, "'" + path + "'", [&](std::FILE* file, const std::string& temp) {
    write_bytes(file, text.data(), text.size(), temp);
  });
}

}  // namespace ds::nn
