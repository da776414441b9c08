#pragma once
// Portability macros shared by host and device code. Includes nothing.

#if defined(__CUDACC__)
#define PIT_HD __host__ __device__
#define PIT_HD_INLINE __host__ __device__ __forceinline__
#else
#define PIT_HD
#define PIT_HD_INLINE inline
#endif
