# Every dependency comes from the system (Debian packages, or a prefix on CMAKE_PREFIX_PATH).

find_package(Torch REQUIRED)
find_package(nlohmann_json 3.2 REQUIRED)

if(DEMON_BUILD_EXAMPLES OR DEMON_BUILD_BENCHMARKS)
  find_package(CLI11 REQUIRED)
endif()
if(DEMON_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(DEMON_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

# A LibTorch built with the pre-C++11 string ABI cannot link against Debian's C++ packages.
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  message(WARNING "LibTorch uses the pre-C++11 string ABI; GoogleTest and Google Benchmark from "
                  "Debian will not link against it")
endif()
message(STATUS "demon: LibTorch ${Torch_VERSION}")
