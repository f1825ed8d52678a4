# Every dependency comes from the system (Debian packages, or a prefix on CMAKE_PREFIX_PATH).

find_package(Torch REQUIRED)
find_package(nlohmann_json 3.2 REQUIRED)

if(DEMON_BUILD_EXAMPLES OR DEMON_BUILD_BENCHMARKS)
  find_package(CLI11 REQUIRED)
  find_package(spdlog REQUIRED)
endif()
if(DEMON_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(DEMON_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

# A LibTorch built with the pre-C++11 string ABI cannot link against Debian's C++ packages.
if(DEFINED ENV{DEMON_TORCH_CXX11_ABI} AND "$ENV{DEMON_TORCH_CXX11_ABI}" STREQUAL "0")
  message(WARNING "LibTorch uses the pre-C++11 ABI; spdlog/gtest/benchmark from Debian will not link")
endif()
message(STATUS "demon: LibTorch ${Torch_VERSION}")
