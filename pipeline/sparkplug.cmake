# pipeline/sparkplug.cmake - enpi_sparkplug: the Sparkplug B host state and decoder
# (sparkplug.c; public header sparkplug.h). Included from pipeline/CMakeLists.txt.
# Needs the targets enpi_common and enpi_proto (sparkplug_b.pb-c.h) and UTHASH_INCLUDE_DIR;
# paths are relative to this file, so it works wherever it is included from.
add_library(enpi_sparkplug STATIC ${CMAKE_CURRENT_LIST_DIR}/sparkplug.c)
target_include_directories(enpi_sparkplug PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_include_directories(enpi_sparkplug PRIVATE ${UTHASH_INCLUDE_DIR})
target_link_libraries(enpi_sparkplug PUBLIC enpi_common PRIVATE enpi_proto m)
