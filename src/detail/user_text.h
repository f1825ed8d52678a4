#pragma once
// Small pieces of the messages demon gives users.

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace demon::detail {

/// "a, b and 2 more": at most `most` names of a list, for a message.
inline std::string list_names(const std::vector<std::string>& names, size_t most = 4) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < most; ++i) {
    text += (i == 0 ? "" : (i + 1 == names.size() ? " and " : ", ")) + names[i];
  }
  if (names.size() > most) {
    text += " and " + std::to_string(names.size() - most) + " more";
  }
  return text;
}

/// Everything the user printed reaches the terminal before an error leaves demon.
inline void flush_output() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

}  // namespace demon::detail
