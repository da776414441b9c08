#!/usr/bin/env bash
# Install what is missing, build into build/ (or $PIT_BUILD_DIR), run every test.
# Usage: scripts/test.sh [extra cmake args...]   e.g. scripts/test.sh -DPIT_CUDA=OFF
#        PIT_BUILD_DIR=build-cpu scripts/test.sh -DPIT_CUDA=OFF   (another build folder)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

PIT_START=$SECONDS
trap pit_on_exit EXIT

pit_setup_path
pit_install_deps
build_dir=${PIT_BUILD_DIR:-build}
pit_configure_build "$build_dir" "$@"

# A GPU that the build can use runs the GPU tests: they fail where they would skip (a driver too
# old for the toolkit, say) instead of the run reporting ok without them.
if pit_has_gpu && grep -q '^PIT_BUILT_WITH_CUDA:INTERNAL=ON$' "$build_dir/CMakeCache.txt" 2>/dev/null; then
  export PIT_REQUIRE_GPU=${PIT_REQUIRE_GPU:-1}
  pit_log "GPU detected: $(nvidia-smi -L | head -n 1); the GPU tests must run (PIT_REQUIRE_GPU=$PIT_REQUIRE_GPU)"
fi

pit_log "running tests"
# --no-tests=error: a build folder configured without tests (-DPIT_BUILD_TESTS=OFF) is no pass.
ctest --test-dir "$build_dir" --output-on-failure -j "$(pit_jobs)" --timeout 600 --no-tests=error
