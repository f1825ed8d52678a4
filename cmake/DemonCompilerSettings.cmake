# Compiler settings shared by every target of the project.

set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

if(DEMON_USE_CCACHE)
  find_program(DEMON_CCACHE ccache)
  if(DEMON_CCACHE)
    set(CMAKE_CXX_COMPILER_LAUNCHER "${DEMON_CCACHE}")
    # Precompiled headers change mtimes ccache would otherwise reject.
    set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
  endif()
endif()

# demon_target_settings(<target>): C++17, the project's warnings, and the shared PCH.
set(DEMON_SANITIZE "" CACHE STRING
    "Sanitizers for demon's own code, e.g. address,undefined (LibTorch stays uninstrumented)")

function(demon_target_settings target)
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
  if(DEMON_PRECOMPILED_HEADERS)
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  endif()
endfunction()
