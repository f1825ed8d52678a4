#include "detail/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "demon/errors.h"

namespace demon::detail {

void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string& temp_path)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path());
  }
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(temp);
    fs::rename(temp, target);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

void replace_file_atomically(const std::string& path, const std::string& bytes) {
  replace_file_atomically(path, [&](const std::string& temp) {
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      throw RuntimeError("demon: cannot create \"" + temp + "\": " + std::strerror(errno));
    size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        const int error = n < 0 ? errno : ENOSPC;
        ::close(fd);
        throw RuntimeError("demon: cannot write \"" + path + "\": " + std::strerror(error) +
                           " (wrote " + std::to_string(written) + " of " +
                           std::to_string(bytes.size()) +
                           " bytes; the previous file is "
                           "left as it was)");
      }
      written += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      throw RuntimeError("demon: cannot write \"" + path + "\": " + std::strerror(errno) +
                         " (the previous file is left as it was)");
    }
  });
}

}  // namespace demon::detail
