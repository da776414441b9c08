#!/usr/bin/env bash
# Install what is missing, build into build/, get the data, train.
# Usage: scripts/train.sh [config] [pit-train args...]   (config: configs/moe.yaml; e.g.
#        scripts/train.sh --resume, scripts/train.sh configs/rigl_mnist.yaml --set run.steps=100)
#        pit-train runs in the repository's root: relative paths inside the config and in --set
#        (data, run.out_dir, ...) are taken from there; the config itself from where you call this.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

# The config, unless the first argument is already one of pit-train's (--set, --resume, ...).
config=configs/moe.yaml
if (($# > 0)) && [[ $1 != -* ]]; then
  config=$1
  shift
fi
# Checked before anything is installed or built: a config named from the caller's folder, else
# from the repository's root (configs/...).
if [[ $config != /* && -f $caller_dir/$config ]]; then
  config=$caller_dir/$config
fi
[[ -f $config ]] || pit_die "config file not found: $config (give a path from the current folder, or one of configs/)"

pit_setup_path
pit_install_deps
# Only what training needs (the tests are scripts/test.sh's job); PIT_CMAKE_ARGS: more cmake
# arguments (e.g. "-DPIT_CUDA=OFF"), as scripts/test.sh takes them on its command line.
read -r -a cmake_args <<<"${PIT_CMAKE_ARGS:-}"
PIT_BUILD_TARGETS="pit-train pit-data" pit_configure_build build "${cmake_args[@]}"

[[ -x build/pit-train ]] || pit_die "build/pit-train was not built: see the build output above"

pit_log "getting data (scripts/get_data.sh)"
PIT_DATA=build/pit-data scripts/get_data.sh

if ! pit_has_gpu; then
  pit_log "no GPU detected: pit-train will run on the CPU"
elif grep -q '^PIT_BUILT_WITH_CUDA:INTERNAL=ON$' build/CMakeCache.txt 2>/dev/null; then
  pit_log "GPU detected: $(nvidia-smi -L | head -n 1)"
elif grep -q '^PIT_CUDA:STRING=OFF$' build/CMakeCache.txt 2>/dev/null; then
  pit_log "a GPU is present, but build/ was configured with -DPIT_CUDA=OFF: pit-train will run on the CPU" \
    "(for the GPU: rm -rf build and run this again)"
else
  pit_log "a GPU is present, but this build has no CUDA backend (nvcc was not found): pit-train will run on the CPU"
fi

pit_log "training: build/pit-train --config $config${*:+ $*}"
exec build/pit-train --config "$config" "$@"
