#pragma once

#include <stdexcept>
#include <string>

namespace demon {

/// The base of every exception demon's own checks throw: `catch (const demon::Error& e)` catches
/// demon's errors and nothing else, and `e.what()` reads "demon::<Api>: <what was wrong, with the
/// bad value, module or tensor named>".
///
/// Each concrete type also derives from the standard exception of its kind, so code that catches
/// `std::invalid_argument`, `std::logic_error`, `std::runtime_error` or `std::exception` keeps
/// working. `Error` itself is not a `std::exception` (a second one would make
/// `catch (const std::exception&)` ambiguous, and so never match).
class Error {
 public:
  virtual ~Error() = default;
  virtual const char* what() const noexcept = 0;

 protected:
  Error() = default;
  Error(const Error&) = default;
  Error& operator=(const Error&) = default;
};

/// Bad input: an argument or option out of range, a name that matches nothing, a file whose
/// content is damaged, a model or optimizer demon cannot handle.
class ValueError : public std::invalid_argument, public Error {
 public:
  explicit ValueError(const std::string& message) : std::invalid_argument(message) {}
  const char* what() const noexcept override { return std::invalid_argument::what(); }
};

/// An index outside the range it indexes.
class IndexError : public std::out_of_range, public Error {
 public:
  explicit IndexError(const std::string& message) : std::out_of_range(message) {}
  const char* what() const noexcept override { return std::out_of_range::what(); }
};

/// A call in the wrong state or order: stepping twice in one step, asking for something that
/// needs a forward first, a state the library itself should never reach.
class StateError : public std::logic_error, public Error {
 public:
  explicit StateError(const std::string& message) : std::logic_error(message) {}
  const char* what() const noexcept override { return std::logic_error::what(); }
};

/// A failure the caller's input did not cause: a file that cannot be written, a collective whose
/// peer died, replicas that diverged, non-finite values met during training.
class RuntimeError : public std::runtime_error, public Error {
 public:
  explicit RuntimeError(const std::string& message) : std::runtime_error(message) {}
  const char* what() const noexcept override { return std::runtime_error::what(); }
};

}  // namespace demon
