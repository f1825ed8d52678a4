#include "demon/warnings.h"

#include <cstdio>
#include <mutex>
#include <utility>

namespace demon {
namespace {

void to_stderr(const std::string& message) {
  std::fflush(stdout);  // keep the user's own output in order with ours
  std::fprintf(stderr, "demon: warning: %s\n", message.c_str());
  std::fflush(stderr);
}

std::mutex& handler_mutex() {
  static std::mutex mutex;
  return mutex;
}

WarningHandler& handler() {
  static WarningHandler current = to_stderr;
  return current;
}

}  // namespace

WarningHandler set_warning_handler(WarningHandler replacement) {
  std::lock_guard<std::mutex> lock(handler_mutex());
  WarningHandler previous = std::move(handler());
  handler() = replacement ? std::move(replacement) : WarningHandler(to_stderr);
  return previous;
}

void warn(const std::string& message) {
  WarningHandler current;
  {
    std::lock_guard<std::mutex> lock(handler_mutex());
    current = handler();
  }
  current(message);
}

}  // namespace demon
