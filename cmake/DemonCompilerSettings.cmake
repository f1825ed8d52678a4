# Compiler settings shared by every target of the project.

set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

if(DEMON_USE_CCACHE)
  find_program(DEMON_CCACHE ccache)
  if(DEMON_CCACHE)
    # ccache caches a compile that uses a precompiled header only with this sloppiness; it goes
    # through the launcher because the environment of the configure step never reaches the build.
    # With the source tree as base directory, paths inside it (build trees, .venv) hash as
    # relative ones, so that another checkout of the same commit, a CI clone, finds the compiles.
    set(CMAKE_CXX_COMPILER_LAUNCHER
        "${CMAKE_COMMAND}" -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        "CCACHE_BASEDIR=${PROJECT_SOURCE_DIR}"
        "${DEMON_CCACHE}")
  endif()
endif()

# demon_target_settings(<target> [NO_PCH]): C++17, the project's warnings, and the shared PCH
# (NO_PCH: for code that does not include LibTorch).
set(DEMON_SANITIZE "" CACHE STRING
    "Sanitizers for demon's own code, e.g. address,undefined (LibTorch stays uninstrumented)")

function(demon_target_settings target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_PCH" "" "")
  target_compile_features(${target} PUBLIC cxx_std_17)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
    if(DEMON_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
  if(DEMON_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${DEMON_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${DEMON_SANITIZE})
  endif()
  if(DEMON_BUILD_FUZZERS)
    # libFuzzer's coverage feedback from every target (fuzz targets add -fsanitize=fuzzer).
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  if(DEMON_PRECOMPILED_HEADERS AND NOT arg_NO_PCH)
    demon_share_precompiled_header(${target})
  endif()
endfunction()

# One precompiled <torch/torch.h> per kind of code (position-independent or not), shared by every
# target of that kind: each one is over 500 MB and takes most of a minute to build, and GCC
# refuses a PCH built with different -fPIC settings.
function(demon_share_precompiled_header target)
  get_target_property(pic ${target} POSITION_INDEPENDENT_CODE)
  if(pic)
    set(kind PIC)
  else()
    set(kind NO_PIC)
  endif()
  get_property(owner GLOBAL PROPERTY DEMON_PCH_OWNER_${kind})
  if(owner)
    target_precompile_headers(${target} REUSE_FROM ${owner})
  else()
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
    set_property(GLOBAL PROPERTY DEMON_PCH_OWNER_${kind} ${target})
  endif()
endfunction()
