# Installs the library, its headers and a CMake package config, so that a downstream project can
#   find_package(demon REQUIRED)
#   target_link_libraries(app PRIVATE demon::demon)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(DEMON_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/demon")

install(TARGETS demon EXPORT demonTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/demon DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT demonTargets NAMESPACE demon:: DESTINATION ${DEMON_INSTALL_CMAKEDIR})

# Where this build found LibTorch, for the package config to find the same one.
get_filename_component(DEMON_TORCH_CMAKE_DIR "${Torch_DIR}/.." ABSOLUTE)
set(DEMON_TORCH_PREFIX "${TORCH_INSTALL_PREFIX}")
configure_package_config_file(cmake/demonConfig.cmake.in
  "${PROJECT_BINARY_DIR}/demonConfig.cmake"
  INSTALL_DESTINATION ${DEMON_INSTALL_CMAKEDIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/demonConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/demonConfig.cmake" "${PROJECT_BINARY_DIR}/demonConfigVersion.cmake"
  DESTINATION ${DEMON_INSTALL_CMAKEDIR})
