#!/usr/bin/env bash
# Shared set-up for the pit scripts. Source it, do not run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"
# The callers run with `set -euo pipefail` (this file leaves the options to
# them). The functions below also return explicit statuses, so they behave the
# same when called from an `if` or a pipeline (where bash ignores `set -e`).

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  printf 'pit: %s is a library: source it from the scripts in scripts/\n' "$0" >&2
  exit 1
fi

# Debian/Ubuntu packages pit needs to build and test.
PIT_DEPS=(
  build-essential cmake ninja-build pkg-config git
  libyaml-cpp-dev libhdf5-dev libopenblas-dev
  libopenmpi-dev openmpi-bin
  libgtest-dev libgmock-dev
  python3
  curl ca-certificates  # scripts/get_data.sh downloads the datasets
)
PIT_MIN_CMAKE=3.24

pit_log() { printf 'pit: %s\n' "$*"; }
pit_err() { printf 'pit: error: %s\n' "$*" >&2; }
pit_die() { pit_err "$*"; exit 1; }

# Number of parallel jobs: PIT_JOBS if set, else the number of cores, at most one per 2 GiB of
# available memory (a compile of the CUDA kernels takes over 1 GiB; a machine of many cores and
# little memory would kill its compilers).
pit_jobs() {
  if [[ -n ${PIT_JOBS:-} ]]; then
    printf '%s\n' "$PIT_JOBS"
    return
  fi
  local cores mem_kb
  cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
  mem_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || true)
  if [[ $mem_kb =~ ^[0-9]+$ ]]; then
    local by_mem=$((mem_kb / (2 * 1024 * 1024)))
    ((by_mem >= 1)) || by_mem=1
    ((by_mem >= cores)) || cores=$by_mem
  fi
  printf '%s\n' "$cores"
}

# Put the CUDA toolkit on PATH when it is installed but not found.
pit_setup_path() {
  if [[ -x /usr/local/cuda/bin/nvcc ]] && ! command -v nvcc >/dev/null 2>&1; then
    export PATH="/usr/local/cuda/bin:$PATH"
    pit_log "added /usr/local/cuda/bin to PATH"
  fi
}

# True (0) when nvidia-smi lists at least one GPU.
pit_has_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '
}

# Fail unless cmake exists and is at least PIT_MIN_CMAKE.
pit_check_cmake() {
  if ! command -v cmake >/dev/null 2>&1; then
    pit_err "cmake not found (need >= $PIT_MIN_CMAKE)"
    return 1
  fi
  local have
  have=$(cmake --version | sed -n '1s/^cmake version \([^ ]*\).*/\1/p')
  if [[ -z $have ]]; then
    pit_err "cannot read the cmake version from 'cmake --version'"
    return 1
  fi
  # sort -V -C succeeds when the list is already in version order (min <= have).
  if ! printf '%s\n%s\n' "$PIT_MIN_CMAKE" "$have" | sort -V -C; then
    pit_err "cmake $have at $(command -v cmake) is too old: pit needs cmake >= $PIT_MIN_CMAKE"
    pit_err "on Debian 12 use the distribution's cmake (3.25) or install a newer one from https://cmake.org/download/"
    return 1
  fi
}

# Is one package of PIT_DEPS installed? Tool packages also count as present
# when the tool is on PATH (e.g. a cmake installed outside apt).
pit_pkg_present() {
  local pkg=$1 tool=
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    return 0
  fi
  case $pkg in
    cmake | git | python3 | pkg-config | curl) tool=$pkg ;;
    ninja-build) tool=ninja ;;
  esac
  [[ -n $tool ]] && command -v "$tool" >/dev/null 2>&1
}

# Install the missing packages of PIT_DEPS (as root, or by sudo where it asks no password), or say
# how to.
pit_install_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    pit_err "this is not a Debian/Ubuntu system (no apt-get/dpkg-query)."
    pit_err "install the equivalents of these packages, then run again:"
    pit_err "  ${PIT_DEPS[*]}"
    pit_err "and cmake >= $PIT_MIN_CMAKE"
    exit 1
  fi

  local pkg missing=()
  for pkg in "${PIT_DEPS[@]}"; do
    pit_pkg_present "$pkg" || missing+=("$pkg")
  done

  if ((${#missing[@]} == 0)); then
    pit_log "all dependencies present"
  elif (($(id -u) == 0)) || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
    # As root, or through sudo where it asks no password.
    local as_root=()
    (($(id -u) == 0)) || as_root=(sudo -n)
    pit_log "installing missing packages${as_root[*]:+ (with sudo)}: ${missing[*]}"
    # Waits up to 5 minutes for a package manager already at work (unattended-upgrades at boot).
    if ! "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 update; then
      pit_die "apt-get update failed (no network, or another package manager held its lock for 5 minutes?);" \
        "missing packages: ${missing[*]}"
    fi
    if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
      --no-install-recommends "${missing[@]}"; then
      pit_die "apt-get install failed for: ${missing[*]}"
    fi
  else
    pit_err "missing packages: ${missing[*]}"
    pit_err "install them with:"
    printf '  sudo apt-get install -y %s\n' "${missing[*]}" >&2
    exit 1
  fi

  pit_check_cmake || exit 1
}

# pit_configure_build <build_dir> [extra cmake args...]
# Configure with Ninja (Release unless CMAKE_BUILD_TYPE is set; later -D args
# win) and build with all cores: every target, or only those named in
# $PIT_BUILD_TARGETS (space-separated). Run from the repository root.
pit_configure_build() {
  if (($# < 1)); then
    pit_err "usage: pit_configure_build <build_dir> [cmake args...]"
    return 2
  fi
  local build_dir=$1
  shift
  local generator=Ninja
  local cache="$build_dir/CMakeCache.txt"

  # A cache made with another generator, or for another source tree, makes
  # cmake refuse to configure: start that build directory afresh.
  if [[ -f $cache ]]; then
    local old_gen old_src src
    old_gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$cache")
    old_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
    src=$(pwd -P)
    if [[ $old_gen != "$generator" ]]; then
      pit_log "$build_dir was configured with '${old_gen:-?}', not '$generator': removing its CMakeCache.txt"
      rm -rf "$cache" "$build_dir/CMakeFiles"
    elif [[ -n $old_src && $(cd "$old_src" 2>/dev/null && pwd -P) != "$src" ]]; then
      pit_log "$build_dir was configured for source '$old_src', not '$src': removing its CMakeCache.txt"
      rm -rf "$cache" "$build_dir/CMakeFiles"
    fi
  fi

  local jobs
  jobs=$(pit_jobs)
  pit_log "configuring $build_dir (${CMAKE_BUILD_TYPE:-Release}${*:+; $*})"
  cmake -S . -B "$build_dir" -G "$generator" \
    -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" "$@" || return
  local targets=()
  if [[ -n ${PIT_BUILD_TARGETS:-} ]]; then
    read -r -a targets <<<"$PIT_BUILD_TARGETS"
    targets=(--target "${targets[@]}")
  fi
  pit_log "building $build_dir with $jobs jobs${PIT_BUILD_TARGETS:+ (targets: $PIT_BUILD_TARGETS)}"
  cmake --build "$build_dir" -j "$jobs" "${targets[@]}" || return
}

# Print how long the script ran; meant for `trap 'pit_on_exit' EXIT` with
# PIT_START=$SECONDS set at the start.
pit_on_exit() {
  local rc=$?
  local t=$((SECONDS - ${PIT_START:-0}))
  local how=ok
  ((rc == 0)) || how="FAILED (exit $rc)"
  pit_log "$how after $((t / 60))m $((t % 60))s"
  return "$rc"
}
