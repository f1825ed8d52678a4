#pragma once

#include <functional>
#include <string>

namespace demon::detail {

/// Replaces `path` atomically: `write` fills a temporary file next to it, which is then renamed
/// over `path`. If `write` throws, the temporary file is removed and `path` is left untouched.
void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string& temp_path)>& write);

/// Replaces `path` atomically with `bytes`, written in full and flushed to the device (fsync)
/// before the rename, so that a crash or a full disk leaves either the old file or the new one.
/// Throws demon::RuntimeError naming the path and the system's reason (e.g. "No space left on
/// device") when the bytes cannot all be written.
void replace_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace demon::detail
