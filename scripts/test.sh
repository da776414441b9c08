#!/usr/bin/env bash
# Install what is missing, build into build/, run every test.
# Usage: scripts/test.sh [extra cmake args...]   e.g. scripts/test.sh -DPIT_CUDA=OFF
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

PIT_START=$SECONDS
trap pit_on_exit EXIT

pit_setup_path
pit_install_deps
pit_configure_build build "$@"

pit_log "running tests"
ctest --test-dir build --output-on-failure -j "$(pit_jobs)" --timeout 600
