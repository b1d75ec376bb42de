# Warnings live on an INTERFACE target that every project target links; CMAKE_CXX_FLAGS stays untouched.
add_library(nld_warnings INTERFACE)
target_compile_options(nld_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused
  -Woverloaded-virtual -Wpedantic -Wnull-dereference -Wimplicit-fallthrough -Werror=vla
  -Wno-missing-field-initializers)
if(NLD_WERROR)
  target_compile_options(nld_warnings INTERFACE -Werror)
endif()
