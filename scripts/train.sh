#!/usr/bin/env bash
# Install what is missing, build into build/, get the data, train.
# Usage: scripts/train.sh [config] [pit-train args...]   (config: configs/moe.yaml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

config=${1:-configs/moe.yaml}
if (($# > 0)); then shift; fi

pit_setup_path
pit_install_deps
# Only what training needs (the tests are scripts/test.sh's job).
PIT_BUILD_TARGETS="pit-train pit-data" pit_configure_build build

[[ -f $config ]] || pit_die "config file not found: $config (the configs are in configs/)"
[[ -x build/pit-train ]] || pit_die "build/pit-train was not built: see the build output above"

pit_log "getting data (scripts/get_data.sh)"
PIT_DATA=build/pit-data scripts/get_data.sh

if pit_has_gpu; then
  pit_log "GPU detected: $(nvidia-smi -L | head -n 1)"
else
  pit_log "no GPU detected: pit-train will run on the CPU"
fi

pit_log "training: build/pit-train --config $config${*:+ $*}"
exec build/pit-train --config "$config" "$@"
