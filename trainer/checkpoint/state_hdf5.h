#pragma once
// A StateDict inside an HDF5 group, one dataset per entry (a name's slashes become groups):
//   tensors/<name>   the tensor in its dtype (trainer/io/hdf5.h: f16/bf16/bool bit-exact)
//   ints/<name>      0-d int64
//   reals/<name>     0-d float64
//   strings/<name>   a UTF-8 string
#include "trainer/io/hdf5.h"
#include "trainer/state.h"

namespace pit::train {

// Throws naming the entry when a name is not a clean relative path ("a/b": no empty, "." or
// ".." part) or is also the prefix of another name of the same kind ("a" next to "a/b").
void check_state_names(const StateDict& state);

void write_state(const io::Group& group, const StateDict& state);
StateDict read_state(const io::Group& group);  // tensors on the CPU

}  // namespace pit::train
