# Warnings on and clean for every pit target.
function(pit_set_warnings target)
  target_compile_options(${target} PRIVATE
    # Host C++: the usual strict set.
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>
    # Device code: forward the same to the host compiler; nvcc's own diagnostics as errors would
    # trip on CUDA headers, so only the host side is strict.
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
endfunction()
