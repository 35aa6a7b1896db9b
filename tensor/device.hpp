#pragma once
#include <cstdint>
#include <ostream>
#include <string>

namespace ds {

enum class DeviceKind : std::uint8_t { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;

  static Device cpu() { return {DeviceKind::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceKind::cuda, index}; }
  // Parses "cpu", "cuda" or "cuda:N"; throws ds::Error naming the text otherwise.
  static Device parse(const std::string& text);
  bool is_cpu() const { return kind == DeviceKind::cpu; }
  std::string str() const;
  bool operator==(const Device&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Device& device);

}  // namespace ds
