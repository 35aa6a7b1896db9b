#pragma once
// The single exception type of the framework. Every message names the op, the file, the
// option or the shapes at fault so that a user can act on it without a debugger.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ds {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates anything that has operator<< into one message (ds::cat is the tensor op).
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(concat(std::forward<Parts>(parts)...));
}

}  // namespace ds
