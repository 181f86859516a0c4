# Installing convoy (cmake --install build --prefix P) and packaging it (cd build && cpack -G DEB):
#   P/bin/convoy                      the program
#   P/lib/libconvoy.so                every convoy archive in one shared library, for programs
#   P/lib/convoy/libconvoy_cuda.so    the CUDA plug-in, loaded for --device cuda (core/cuda_plugin.h)
#   P/include/convoy/...              the headers, as the sources include them ("core/net.h")
#   P/lib/cmake/convoy/               find_package(convoy): targets convoy::convoy and convoy::core
#   P/lib/pkgconfig/convoy.pc         pkg-config --cflags --libs convoy
# The shared library: the static archives the program links, whole, behind one soname. Every
# object is built position-independent for it (CMAKE_POSITION_INDEPENDENT_CODE, top level).
# (Raw --whole-archive: CMake's WHOLE_ARCHIVE feature refuses an archive that the targets'
# own dependencies also name plainly. The layers come whole through convoy_core already, and
# linking convoy_launch after brings every outside library the archives need.)
add_library(convoy_shared SHARED ${PROJECT_SOURCE_DIR}/cmake/shared_library.cpp)
set(_whole)
foreach(archive convoy_launch convoy_distributed convoy_io convoy_core_base convoy_proto)
  list(APPEND _whole $<TARGET_FILE:${archive}>)
endforeach()
target_link_libraries(convoy_shared PRIVATE -Wl,--whole-archive ${_whole} -Wl,--no-whole-archive convoy_launch)
# Every symbol resolved when the library is made, not when a program first loads it. (Not in
# sanitizer and fuzz builds: clang puts its sanitizer runtime into executables only, so a shared
# library of theirs leaves those symbols to the program.)
if(NOT CONVOY_SANITIZE AND NOT CONVOY_FUZZ)
  target_link_options(convoy_shared PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(convoy_shared PROPERTIES OUTPUT_NAME convoy VERSION ${PROJECT_VERSION}
                                               SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})

install(TARGETS convoy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS convoy_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET convoy_cuda_plugin)
  install(TARGETS convoy_cuda_plugin LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/convoy)
endif()
foreach(folder core io distributed launch)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convoy/${folder}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(DIRECTORY ${PROJECT_BINARY_DIR}/core/proto/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convoy/core/proto
        FILES_MATCHING PATTERN "*.pb.h")

configure_file(${PROJECT_SOURCE_DIR}/cmake/convoyConfig.cmake.in ${PROJECT_BINARY_DIR}/convoyConfig.cmake @ONLY)
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/convoyConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/convoyConfig.cmake ${PROJECT_BINARY_DIR}/convoyConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/convoy)
configure_file(${PROJECT_SOURCE_DIR}/cmake/convoy.pc.in ${PROJECT_BINARY_DIR}/convoy.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/convoy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# A Debian package of the same files (cpack -G DEB in build/); its dependencies are read from the
# binaries by dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME convoy)
set(CPACK_PACKAGE_VENDOR "the convoy developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Data-parallel CNN training on CPUs and GPUs (MPI, NCCL, HDF5 shards)")
set(CPACK_PACKAGE_CONTACT "convoy developers <convoy@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
include(CPack)
