# Decides whether the CUDA backend is built (PIT_WITH_CUDA) and enables the CUDA language.
# PIT_CUDA=AUTO builds it when nvcc is found; ON requires it; OFF builds the CPU backend alone.
include(CheckLanguage)

# A CUDA compiler that an earlier configure did not find is looked for again: check_language
# caches NOTFOUND and never probes once it is set, so a toolkit installed since would be ignored.
if(DEFINED CMAKE_CUDA_COMPILER AND NOT CMAKE_CUDA_COMPILER)
  unset(CMAKE_CUDA_COMPILER CACHE)
endif()

if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS "/usr/local/cuda/bin/nvcc")
  # nvcc is often installed but not on PATH; CMake does not look in /usr/local/cuda by itself.
  set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc" CACHE FILEPATH "CUDA compiler")
endif()

# The oldest CUDA toolkit the backend builds with: sm_90a needs 12.0, and the TMA descriptors
# take cuTensorMapEncodeTiled through cudaGetDriverEntryPointByVersion (12.5).
set(PIT_MIN_CUDA 12.5)

set(PIT_WITH_CUDA OFF)
if(NOT PIT_CUDA STREQUAL "OFF")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --version OUTPUT_VARIABLE _pit_nvcc_out ERROR_QUIET)
    string(REGEX MATCH "release ([0-9]+\\.[0-9]+)" _pit_nvcc_release "${_pit_nvcc_out}")
    set(_pit_nvcc_version "${CMAKE_MATCH_1}")
    if(_pit_nvcc_version AND _pit_nvcc_version VERSION_LESS PIT_MIN_CUDA)
      string(CONCAT _pit_old_cuda "${CMAKE_CUDA_COMPILER} is CUDA ${_pit_nvcc_version}; pit's CUDA backend needs "
                        "${PIT_MIN_CUDA} or newer (NVIDIA's cuda-toolkit packages; the distribution's "
                        "nvidia-cuda-toolkit is often older)")
      if(PIT_CUDA STREQUAL "ON")
        message(FATAL_ERROR "PIT_CUDA=ON but ${_pit_old_cuda}; or pass -DCMAKE_CUDA_COMPILER=/path/to/a/newer/nvcc")
      endif()
      message(WARNING "pit: building the CPU backend only: ${_pit_old_cuda}")
    else()
      set(PIT_WITH_CUDA ON)
    endif()
  elseif(PIT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PIT_CUDA=ON but no CUDA compiler (nvcc) was found. Install the CUDA "
                        "Toolkit ${PIT_MIN_CUDA} or newer (NVIDIA's cuda-toolkit package; Debian/Ubuntu's "
                        "nvidia-cuda-toolkit where it is that new) or pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc; "
                        "-DPIT_CUDA=OFF builds the CPU backend only.")
  endif()
endif()

# For scripts/train.sh, which says whether the GPU it sees will be used.
set(PIT_BUILT_WITH_CUDA ${PIT_WITH_CUDA} CACHE INTERNAL "Whether this build has the CUDA backend")

if(PIT_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    # Hopper (H100/H200) is the target; 90a unlocks wgmma and TMA. Override for other GPUs.
    set(CMAKE_CUDA_ARCHITECTURES 90a CACHE STRING "CUDA architectures")
  endif()
  enable_language(CUDA)
  # CMake 3.25 does not know nvcc's C++20 flag (later versions do): teach it, then ask for 20.
  if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION OR CMAKE_CUDA20_STANDARD_COMPILE_OPTION STREQUAL "")
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  # dispatch() calls templated lambdas `[&]<typename T>() {...}` whose T appears in no parameter:
  # valid C++20 that nvcc's front end warns about (#445); silence only that diagnostic.
  string(APPEND CMAKE_CUDA_FLAGS " -diag-suppress=445")
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "pit: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "pit: CUDA backend OFF (CPU only)")
endif()
