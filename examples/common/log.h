#pragma once

// The example programs' progress lines: local time, level, message; flushed at once, so a run
// that is killed keeps everything it printed. printf formats, checked by the compiler. (Not
// spdlog: it needs the fmt it was built with, and PyTorch 2.x's LibTorch ships another fmt in its
// include directory, which shadows it.)

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace example_log {
namespace detail {

inline void write(std::FILE* stream, const char* level, const char* format, std::va_list args) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm local{};
  localtime_r(&seconds, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
  std::fprintf(stream, "[%s.%03d] [%s] ", stamp, static_cast<int>(millis), level);
  std::vfprintf(stream, format, args);
  std::fputc('\n', stream);
  std::fflush(stream);
}

}  // namespace detail

/// Progress lines off (errors still print): data-parallel ranks other than 0, whose lines would
/// repeat rank 0's.
inline bool& info_muted() {
  static bool muted = false;
  return muted;
}

__attribute__((format(printf, 1, 2))) inline void info(const char* format, ...) {
  if (info_muted())
    return;
  std::va_list args;
  va_start(args, format);
  detail::write(stdout, "info", format, args);
  va_end(args);
}

__attribute__((format(printf, 1, 2))) inline void error(const char* format, ...) {
  std::fflush(stdout);
  std::va_list args;
  va_start(args, format);
  detail::write(stderr, "error", format, args);
  va_end(args);
}

}  // namespace example_log
