#pragma once
// The framework promises that every ds::Error names the op and the shapes or dtypes at fault.
// Tests check for those words rather than for exact wording, which may be reworded freely.
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tensor/error.hpp"

namespace ds::testing {

class MessageContains : public Catch::MatcherBase<ds::Error> {
 public:
  explicit MessageContains(std::vector<std::string> parts) : parts_(std::move(parts)) {}

  bool match(const ds::Error& error) const override {
    const std::string message = error.what();
    for (const auto& part : parts_) {
      if (message.find(part) == std::string::npos) return false;
    }
    return true;
  }

  std::string describe() const override {
    std::string text = "has a message containing";
    for (const auto& part : parts_) text += " \"" + part + "\"";
    return text;
  }

 private:
  std::vector<std::string> parts_;
};

}  // namespace ds::testing

// Without this Catch2 prints a failed match as "{?}" instead of the message that was wrong.
namespace Catch {
template <>
struct StringMaker<ds::Error> {
  static std::string convert(const ds::Error& error) { return error.what(); }
};
}  // namespace Catch
