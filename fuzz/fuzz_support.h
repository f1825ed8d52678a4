#pragma once

// What the fuzz targets share: a scratch file per process (the readers under test take paths),
// the seed corpus each target writes itself, and a way to report a broken promise as a crash.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace demon::fuzz {

/// A file of this process's own under the temporary directory, removed at exit.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& name)
      : path_((std::filesystem::temp_directory_path() /
               ("demon_fuzz_" + std::to_string(::getpid()) + "_" + name))
                  .string()) {}
  ~ScratchFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  const std::string& path() const { return path_; }
  void write(const uint8_t* data, size_t size) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", path_.c_str());
      std::abort();
    }
  }
  void write(const std::string& bytes) const {
    write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

 private:
  std::string path_;
};

/// A promise of the code under test did not hold for this input: libFuzzer keeps it as a crash.
[[noreturn]] inline void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz: %s\n", what.c_str());
  std::abort();
}

/// With DEMON_FUZZ_SEEDS=DIR in the environment, writes the target's seed corpus into DIR
/// (seed_0, seed_1, ...) and exits: the corpus is made by the code it exercises, never committed.
inline void write_seeds_if_asked(const std::function<std::vector<std::string>()>& make_seeds) {
  const char* dir = std::getenv("DEMON_FUZZ_SEEDS");
  if (dir == nullptr) {
    return;
  }
  std::filesystem::create_directories(dir);
  const auto seeds = make_seeds();
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream out(std::filesystem::path(dir) / ("seed_" + std::to_string(i)), std::ios::binary);
    out << seeds[i];
  }
  std::printf("fuzz: wrote %zu seeds into %s\n", seeds.size(), dir);
  std::exit(0);
}

}  // namespace demon::fuzz
