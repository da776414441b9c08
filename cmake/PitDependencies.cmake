# Finds every library pit uses and wraps each in one pit:: target. A missing required library
# stops the configure step with the Debian/Ubuntu package that provides it.

function(pit_missing what package)
  message(FATAL_ERROR "pit: ${what} was not found. Install it with:\n"
                      "    sudo apt-get install -y ${package}\n"
                      "(scripts/test.sh installs every dependency on Debian/Ubuntu.)")
endfunction()
# The CUDA backend's libraries come from NVIDIA's packages, which the scripts do not install.
function(pit_missing_cuda what package)
  message(FATAL_ERROR "pit: ${what} was not found; the CUDA backend needs it. Install ${package}, "
                      "or build without CUDA: -DPIT_CUDA=OFF (scripts/test.sh -DPIT_CUDA=OFF, "
                      "PIT_CMAKE_ARGS=-DPIT_CUDA=OFF scripts/train.sh).")
endfunction()

# ---- yaml-cpp (configs) -----------------------------------------------------------------------
find_package(yaml-cpp QUIET)
if(TARGET yaml-cpp::yaml-cpp)          # yaml-cpp >= 0.8 names its target like this
  add_library(pit::yaml ALIAS yaml-cpp::yaml-cpp)
elseif(TARGET yaml-cpp)                # yaml-cpp 0.7 (Debian 12)
  add_library(pit::yaml ALIAS yaml-cpp)
else()
  pit_missing("yaml-cpp" "libyaml-cpp-dev")
endif()

# ---- HDF5, C API (datasets, checkpoints) ------------------------------------------------------
find_package(HDF5 QUIET COMPONENTS C)
if(NOT HDF5_FOUND)
  pit_missing("HDF5 (C library)" "libhdf5-dev")
endif()
add_library(pit_hdf5 INTERFACE)
target_include_directories(pit_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(pit_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(pit_hdf5 INTERFACE ${HDF5_C_DEFINITIONS})
add_library(pit::hdf5 ALIAS pit_hdf5)

# ---- OpenBLAS through its CBLAS interface (CPU GEMM) ------------------------------------------
find_path(PIT_CBLAS_INCLUDE_DIR cblas.h
          PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-pthread)
find_library(PIT_OPENBLAS_LIBRARY NAMES openblas openblasp
             PATH_SUFFIXES openblas-pthread x86_64-linux-gnu/openblas-pthread)
if(NOT PIT_CBLAS_INCLUDE_DIR OR NOT PIT_OPENBLAS_LIBRARY)
  pit_missing("OpenBLAS (cblas.h and libopenblas)" "libopenblas-dev")
endif()
add_library(pit_openblas INTERFACE)
target_include_directories(pit_openblas SYSTEM INTERFACE ${PIT_CBLAS_INCLUDE_DIR})
target_link_libraries(pit_openblas INTERFACE ${PIT_OPENBLAS_LIBRARY})
add_library(pit::blas ALIAS pit_openblas)

# ---- threads -----------------------------------------------------------------------------------
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# ---- MPI (launch, CPU collectives, NCCL bootstrap) --------------------------------------------
set(PIT_WITH_MPI OFF)
if(NOT PIT_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    set(PIT_WITH_MPI ON)
  elseif(PIT_MPI STREQUAL "ON")
    pit_missing("MPI (PIT_MPI=ON)" "libopenmpi-dev openmpi-bin")
  endif()
endif()
message(STATUS "pit: MPI ${PIT_WITH_MPI}")

# ---- GoogleTest -------------------------------------------------------------------------------
if(PIT_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    pit_missing("GoogleTest (PIT_BUILD_TESTS=ON)" "libgtest-dev libgmock-dev")
  endif()
endif()

# ---- CUDA libraries: cuBLAS, cuSPARSE (toolkit), cuDNN, NCCL ----------------------------------
if(PIT_WITH_CUDA)
  foreach(lib cudart cublas cublasLt cusparse)
    if(NOT TARGET CUDA::${lib})
      pit_missing_cuda("CUDA library ${lib}" "the CUDA Toolkit (cuda-toolkit)")
    endif()
  endforeach()

  # cuDNN and NCCL live under the toolkit on some machines and in the system folders on others.
  set(_pit_cuda_roots ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR} /usr/local/cuda /usr)
  set(_pit_inc_suffixes include include/x86_64-linux-gnu targets/x86_64-linux/include)
  set(_pit_lib_suffixes lib64 lib lib/x86_64-linux-gnu targets/x86_64-linux/lib)

  find_path(PIT_CUDNN_INCLUDE_DIR cudnn.h HINTS ${_pit_cuda_roots} PATH_SUFFIXES ${_pit_inc_suffixes})
  find_library(PIT_CUDNN_LIBRARY cudnn HINTS ${_pit_cuda_roots} PATH_SUFFIXES ${_pit_lib_suffixes})
  if(NOT PIT_CUDNN_INCLUDE_DIR OR NOT PIT_CUDNN_LIBRARY)
    pit_missing_cuda("cuDNN (cudnn.h, libcudnn)"
                     "cudnn9-cuda-${CUDAToolkit_VERSION_MAJOR} (NVIDIA's repository) or libcudnn9-dev-cuda-${CUDAToolkit_VERSION_MAJOR}")
  endif()
  add_library(pit_cudnn INTERFACE)
  target_include_directories(pit_cudnn SYSTEM INTERFACE ${PIT_CUDNN_INCLUDE_DIR})
  target_link_libraries(pit_cudnn INTERFACE ${PIT_CUDNN_LIBRARY})
  add_library(pit::cudnn ALIAS pit_cudnn)

  find_path(PIT_NCCL_INCLUDE_DIR nccl.h HINTS ${_pit_cuda_roots} PATH_SUFFIXES ${_pit_inc_suffixes})
  find_library(PIT_NCCL_LIBRARY nccl HINTS ${_pit_cuda_roots} PATH_SUFFIXES ${_pit_lib_suffixes})
  if(NOT PIT_NCCL_INCLUDE_DIR OR NOT PIT_NCCL_LIBRARY)
    pit_missing_cuda("NCCL (nccl.h, libnccl)" "libnccl-dev (NVIDIA's repository)")
  endif()
  add_library(pit_nccl INTERFACE)
  target_include_directories(pit_nccl SYSTEM INTERFACE ${PIT_NCCL_INCLUDE_DIR})
  target_link_libraries(pit_nccl INTERFACE ${PIT_NCCL_LIBRARY})
  add_library(pit::nccl ALIAS pit_nccl)
  message(STATUS "pit: cuDNN ${PIT_CUDNN_LIBRARY}, NCCL ${PIT_NCCL_LIBRARY}")
endif()
