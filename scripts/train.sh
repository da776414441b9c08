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
pit_configure_build build

if [[ ! -x build/pit-train ]]; then
  pit_log "the trainer (pit-train) is not built yet; it arrives with issue #5. Set-up and build succeeded."
  exit 0
fi

if [[ -x scripts/get_data.sh ]]; then
  pit_log "getting data (scripts/get_data.sh)"
  scripts/get_data.sh
fi

[[ -f $config ]] || pit_die "config file not found: $config"

if pit_has_gpu; then
  pit_log "GPU detected: $(nvidia-smi -L | head -n 1)"
else
  pit_log "no GPU detected: pit-train will run on the CPU"
fi

pit_log "training: build/pit-train --config $config${*:+ $*}"
exec build/pit-train --config "$config" "$@"
