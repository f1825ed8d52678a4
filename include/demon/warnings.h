#pragma once

#include <functional>
#include <string>

namespace demon {

/// Receives each warning demon gives (a situation that does not stop training but that the user
/// should know: no normalization scale for λ to act on, a group pinned because a cut broke the
/// model's forward, ...). One line of text, without a trailing newline.
using WarningHandler = std::function<void(const std::string& message)>;

/// Installs `handler` (null restores the default) and returns the previous one. The default
/// writes "demon: warning: <message>" to stderr and flushes it. Thread-safe.
WarningHandler set_warning_handler(WarningHandler handler);

/// Passes `message` to the installed handler.
void warn(const std::string& message);

}  // namespace demon
