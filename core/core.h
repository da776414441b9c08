#pragma once
// Everything of pit's core in one include.
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/random.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
