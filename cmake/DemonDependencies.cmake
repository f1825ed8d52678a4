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

# Imported targets are visible only in the directory that found them. A parent project that
# add_subdirectory()s demon links demon::demon, whose interface names LibTorch's targets, so
# they must be global (else: 'Target "torch_cpu" not found' when the parent generates).
if(NOT DEMON_TOP_LEVEL)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.21)
    get_directory_property(demon_imported_targets IMPORTED_TARGETS)
    foreach(target IN LISTS demon_imported_targets)
      get_target_property(demon_target_global ${target} IMPORTED_GLOBAL)
      if(NOT demon_target_global)
        set_target_properties(${target} PROPERTIES IMPORTED_GLOBAL TRUE)
      endif()
    endforeach()
  else()
    message(STATUS "demon: with CMake < 3.21, call find_package(Torch) in the parent project "
                   "before add_subdirectory(demon)")
  endif()
endif()
