// CONVOY_HOST_DEVICE marks small functions that both host code and CUDA kernels call.
#pragma once

#ifdef __CUDACC__
#define CONVOY_HOST_DEVICE __host__ __device__
#else
#define CONVOY_HOST_DEVICE
#endif
