# Turns every kernels_cl/*.cl into a C string so that the binary runs from any directory.
# Defines L2C_KERNEL_SOURCES_C, the generated C file: l2c_kernel_sources[] of {name, source}.
file(GLOB L2C_KERNEL_FILES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cl)
set(L2C_KERNEL_SOURCES_C ${CMAKE_BINARY_DIR}/l2c_kernel_sources.c)
# the script globs the folder itself: a list argument would be split at its semicolons
add_custom_command(
    OUTPUT ${L2C_KERNEL_SOURCES_C}
    COMMAND ${CMAKE_COMMAND} -DOUT=${L2C_KERNEL_SOURCES_C} -DDIR=${CMAKE_CURRENT_LIST_DIR}
            -P ${CMAKE_CURRENT_LIST_DIR}/embed_run.cmake
    DEPENDS ${L2C_KERNEL_FILES} ${CMAKE_CURRENT_LIST_DIR}/embed_run.cmake
    VERBATIM
    COMMENT "embedding OpenCL kernels")
