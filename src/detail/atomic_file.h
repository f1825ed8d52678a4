#pragma once

#include <functional>
#include <string>

namespace demon::detail {

/// Replaces `path` atomically: `write` fills a temporary file next to it, which is then renamed
/// over `path`. If `write` throws, the temporary file is removed and `path` is left untouched.
void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string& temp_path)>& write);

/// Levenshtein distance, for "did you mean" hints.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace demon::detail
