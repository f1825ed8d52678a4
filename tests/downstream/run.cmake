# Installs the build tree into a private prefix, then configures, builds and runs the downstream
# project against that prefix only.
set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "downstream: ${what} failed (${result})")
  endif()
endfunction()

run_step("install" ${CMAKE_COMMAND} --install "${DEMON_BINARY_DIR}" --prefix "${prefix}")
set(prefix_path "${prefix}")
if(DEFINED ENV{CMAKE_PREFIX_PATH})
  set(prefix_path "${prefix};$ENV{CMAKE_PREFIX_PATH}")
endif()
# The installed package config finds the LibTorch demon was built with by itself.
set(torch_args)
if(TORCH_CUDA_ARCH_LIST)
  list(APPEND torch_args "-DTORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST}")
endif()
run_step("configure" ${CMAKE_COMMAND} -S "${DOWNSTREAM_SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix_path}" ${torch_args})
run_step("build" ${CMAKE_COMMAND} --build "${build}")
run_step("run" "${build}/downstream")
