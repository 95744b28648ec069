# bpf_object(NAME SRC [CPU v1|v2|v3] [INCLUDES dirs...] [DEPENDS headers...])
#
# Compiles a BPF C source with clang -target bpf -O2 -g into the build tree and
# generates its libbpf skeleton with `bpftool gen skeleton`. Exposes:
#   - interface library <NAME>_skel: include "weft/<NAME>.skel.h", links libbpf;
#   - variable <NAME>_BPF_OBJECT (cache): path of the built .bpf.o (for BTF tests).
# CPU picks clang's -mcpu (default: clang's own); v3 (kernel >= 5.1) is needed
# for atomic fetch-and-add whose result is used. INCLUDES come before the
# source tree's include/ (tests/kernel/abi_v1 builds a frozen earlier ABI).
# Nothing generated is ever written into the source tree.
find_program(BPF_CLANG NAMES clang clang-16 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(WEFT_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${WEFT_BPF_GEN_DIR}/weft)

if(CMAKE_LIBRARY_ARCHITECTURE)
  set(WEFT_BPF_ARCH_INCLUDE -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()

function(bpf_object name src)
  cmake_parse_arguments(ARG "" "CPU" "DEPENDS;INCLUDES" ${ARGN})
  set(extra_includes)
  foreach(dir ${ARG_INCLUDES})
    list(APPEND extra_includes -I${dir})
  endforeach()
  set(cpu_flag)
  if(ARG_CPU)
    set(cpu_flag -mcpu=${ARG_CPU})
  endif()
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${WEFT_BPF_GEN_DIR}/weft/${name}.skel.h)
  file(GLOB lib_headers ${CMAKE_CURRENT_SOURCE_DIR}/lib/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -target bpf ${cpu_flag} -O2 -g -Wall -Werror -D__TARGET_ARCH_x86
            ${extra_includes} -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR} ${WEFT_BPF_ARCH_INCLUDE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src} ${lib_headers}
            ${CMAKE_SOURCE_DIR}/include/weft/bpf_abi.h ${ARG_DEPENDS}
    COMMENT "BPF ${src}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel} ${obj})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${WEFT_BPF_GEN_DIR} ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set(${name}_BPF_OBJECT ${obj} CACHE INTERNAL "built BPF object ${name}")
endfunction()
