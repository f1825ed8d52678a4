#pragma once
// Small pieces of the messages demon gives users.

#include <algorithm>
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

/// Levenshtein distance, for "did you mean" hints.
inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace demon::detail
