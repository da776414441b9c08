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

pit_log "running tests"
ctest --test-dir "$build_dir" --output-on-failure -j "$(pit_jobs)" --timeout 600
