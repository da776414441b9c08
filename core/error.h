#pragma once
// pit::Error and the one family of check macros. Library code throws; only main() exits.
//
//   PIT_CHECK(cond, "message parts", value, ...)   -> throws pit::Error naming the check
//   PIT_THROW("message parts", ...)                -> throws unconditionally
//   PIT_CUDA_CHECK(expr)    cudaError_t            (needs cuda_runtime.h where used)
//   PIT_CUBLAS_CHECK(expr)  cublasStatus_t         (needs cublas_v2.h where used)
//   PIT_CUSPARSE_CHECK(expr), PIT_CUDNN_CHECK(expr), PIT_NCCL_CHECK(expr): likewise.
// The library macros expand where they are used, so this header includes no CUDA header.
//
// Errors found by CUDA kernels (an index out of range, a class target outside [0, C)) cannot be
// thrown where they happen, and checking the input on the host first would synchronise. Such a
// kernel records the first bad value in its device's error slot and carries on safely; the host
// throws it as a pit::Error, naming the op, the value, the size and the position, at its next
// synchronisation with that device (to(cpu), item(), to_vector(), StreamRef::synchronize) or at
// check_device_errors(device). See core/device_error.h.
#include <sstream>
#include <stdexcept>
#include <string>

namespace pit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// e.what() for the user of a tool: without the " [check `...` failed at file:line]" locations
// that PIT_CHECK / PIT_THROW add for developers (library errors keep their "[in `...` at ...]").
std::string user_message(const std::exception& e);

namespace detail {

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  ((os << args), ...);  // a comma fold: with no args it is void(), not an unused `os`
  return os.str();
}

[[noreturn]] void throw_error(const char* file, int line, const char* expr, const std::string& msg);
[[noreturn]] void throw_library_error(const char* file, int line, const char* expr,
                                      const char* library, long long code, const char* name,
                                      const char* text);

}  // namespace detail
}  // namespace pit

#define PIT_CHECK(cond, ...)                                                                    \
  do {                                                                                          \
    if (!(cond)) [[unlikely]]                                                                   \
      ::pit::detail::throw_error(__FILE__, __LINE__, #cond, ::pit::detail::str_cat(__VA_ARGS__)); \
  } while (0)

#define PIT_THROW(...) \
  ::pit::detail::throw_error(__FILE__, __LINE__, nullptr, ::pit::detail::str_cat(__VA_ARGS__))

#define PIT_STATUS_CHECK_(library, expr, ok, name_fn, text_fn)                                  \
  do {                                                                                          \
    const auto pit_status_ = (expr);                                                            \
    if (pit_status_ != (ok)) [[unlikely]]                                                       \
      ::pit::detail::throw_library_error(__FILE__, __LINE__, #expr, library,                    \
                                         static_cast<long long>(pit_status_),                   \
                                         name_fn(pit_status_), text_fn(pit_status_));           \
  } while (0)

#define PIT_NO_NAME_(status) ""
#define PIT_CUDA_CHECK(expr) \
  PIT_STATUS_CHECK_("CUDA", expr, cudaSuccess, cudaGetErrorName, cudaGetErrorString)
#define PIT_CUBLAS_CHECK(expr) \
  PIT_STATUS_CHECK_("cuBLAS", expr, CUBLAS_STATUS_SUCCESS, cublasGetStatusName, cublasGetStatusString)
#define PIT_CUSPARSE_CHECK(expr) \
  PIT_STATUS_CHECK_("cuSPARSE", expr, CUSPARSE_STATUS_SUCCESS, cusparseGetErrorName, cusparseGetErrorString)
#define PIT_CUDNN_CHECK(expr) \
  PIT_STATUS_CHECK_("cuDNN", expr, CUDNN_STATUS_SUCCESS, PIT_NO_NAME_, cudnnGetErrorString)
#define PIT_NCCL_CHECK(expr) \
  PIT_STATUS_CHECK_("NCCL", expr, ncclSuccess, PIT_NO_NAME_, ncclGetErrorString)
