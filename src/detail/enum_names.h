#pragma once

#include <initializer_list>
#include <stdexcept>
#include <string>

#include "demon/errors.h"

namespace demon::detail {

/// The value of `values` whose to_string() is `name`; otherwise throws demon::ValueError
/// "<unknown> "<name>" (expected one of: a, b, c)", the list made from the same to_string(), so
/// that it cannot drift from what is accepted.
template <typename Enum>
Enum enum_from_string(const std::string& name, std::initializer_list<Enum> values,
                      const std::string& unknown) {
  std::string names;
  for (Enum value : values) {
    if (to_string(value) == name)
      return value;
    names += (names.empty() ? "" : ", ") + to_string(value);
  }
  throw ValueError(unknown + " \"" + name + "\" (expected one of: " + names + ")");
}

}  // namespace demon::detail
