#!/usr/bin/env bash
# A Debian bookworm arm64 root filesystem for tests/integration/test_aarch64_userland.py, run on x86_64
# with user-space emulation only: PRoot + qemu-aarch64-static. No binfmt_misc registration, no kernel
# setting changed, nothing installed on the host by `build`.
#
#   scripts/_rootfs.sh tools    # proot 5.4 (built from Debian sid's source) and qemu-aarch64-static
#                               # (unpacked from bookworm's .deb, maintainer scripts NOT run, so no
#                               # binfmt_misc registration) into the cache's tools/bin. Needs apt-get,
#                               # gcc, make and libtalloc-dev.
#   scripts/_rootfs.sh build    # builds the rootfs once and caches it as a zstd tarball; prints its path
#   scripts/_rootfs.sh path     # prints the cached tarball's path (exit 1 when not built yet)
#   scripts/_rootfs.sh tool NAME # prints where proot, qemu-aarch64-static, debootstrap or zstd is (exit 1: missing)
#
# Everything lives outside the checkout, in ${XDG_CACHE_HOME:-$HOME/.cache}/edgeml/aarch64.
# Facts this follows (issue 11, item 6):
# - bookworm's proot 5.1.0 lacks statx/faccessat2 path translation (the second stage fails); 5.4 works.
# - debootstrap --foreign leaves rootfs/proc a symlink; it must be a directory for proot's /proc bind.
# - qemu-user shows the host's x86 /proc/cpuinfo and onnxruntime's cpuinfo segfaults on it: a fake
#   aarch64 cpuinfo, written to a scratch folder, is bound over /proc/cpuinfo.
# - Binds are read-write and the guest runs as (fake) root: only /dev, /proc and scratch folders are
#   bound, never a host file; the host CA bundle is COPIED into the rootfs.
# - proot's seccomp acceleration makes every guest exit with status 182 on this kernel: PROOT_NO_SECCOMP=1.
# - SIGTERM to proot leaves the guest running: callers run it in its own process group and kill that.
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/edgeml/aarch64"
SUITE=bookworm
MIRROR="${EDGEML_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The packages the guest needs: Python with venv support (the Runtime installer) and CA certificates.
INCLUDE=python3,python3-venv,ca-certificates
# Bump when the recipe below changes: the tarball's name carries it, so a stale cache is never used.
RECIPE_VERSION=1
TARBALL="$CACHE/$SUITE-arm64-minbase-r$RECIPE_VERSION.tar.zst"
HOST_CA=/etc/ssl/certs/ca-certificates.crt

die() { echo "error: $*" >&2; exit 1; }
WORK=""  # this run's scratch folder, removed on exit whatever happens
trap 'if [ -n "$WORK" ]; then rm -rf "$WORK"; fi' EXIT

find_tool() {  # on PATH first, then the cache's tools/bin
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"
  elif [ -x "$CACHE/tools/bin/$1" ]; then echo "$CACHE/tools/bin/$1"
  else return 1
  fi
}

proot_is_new_enough() {  # 5.4 or newer (5.1 fails the second stage)
  local version
  version=$("$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+' | head -1) || return 1
  [ -n "$version" ] && [ "$(printf '%s\n5.4\n' "$version" | sort -V | head -1)" = "5.4" ]
}

fake_cpuinfo() {  # what a 4-core Cortex-A72 (Raspberry Pi 4) reports
  local core
  for core in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\n' "$core"
    printf 'Features\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\n'
    printf 'CPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
  done
}

cmd_tools() {
  command -v apt-get >/dev/null || die "apt-get is missing: the tools come from Debian's packages"
  mkdir -p "$CACHE/tools/bin"
  WORK=$(mktemp -d "$CACHE/tools.XXXXXX")
  local work="$WORK"
  if ! find_tool qemu-aarch64-static >/dev/null; then
    (cd "$work" && apt-get download -q qemu-user-static > "$work/download.log" 2>&1) \
      || { tail -5 "$work/download.log" >&2; die "apt-get download qemu-user-static failed"; }
    dpkg-deb --fsys-tarfile "$work"/qemu-user-static_*.deb | tar -x -C "$work" ./usr/bin/qemu-aarch64-static
    install -m 0755 "$work/usr/bin/qemu-aarch64-static" "$CACHE/tools/bin/"
  fi
  local proot
  if ! proot=$(find_tool proot) || ! proot_is_new_enough "$proot"; then
    # sid's source, fetched with a private apt configuration (the host's sources are not touched).
    mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial"
    printf 'Types: deb-src\nURIs: %s\nSuites: sid\nComponents: main\n%s\n' "$MIRROR" \
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" > "$work/apt/sid.sources"
    local apt=(-o "Dir::Etc::SourceList=$work/apt/sid.sources" -o Dir::Etc::SourceParts=/nonexistent
      -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt" -q)
    apt-get "${apt[@]}" update > "$work/update.log" 2>&1 || { tail -5 "$work/update.log" >&2; die "apt-get update (sid sources)"; }
    (cd "$work" && apt-get "${apt[@]}" source --download-only proot >/dev/null 2>&1 || true)
    ls "$work"/proot_5.*.orig.tar.gz >/dev/null 2>&1 || die "could not fetch proot's source from sid"
    tar -xzf "$work"/proot_5.*.orig.tar.gz -C "$work"
    local source
    source=$(find "$work" -maxdepth 1 -type d -name 'proot-5.*' | head -1)
    tar -xJf "$work"/proot_5.*.debian.tar.xz -C "$source"
    while read -r patch; do
      [ -n "$patch" ] && patch -d "$source" -p1 -s < "$source/debian/patches/$patch"
    done < "$source/debian/patches/series"
    # No git tree here: the version proot prints comes from VERSION (the source folder's name).
    make -C "$source/src" VERSION="${source##*/proot-}" proot > "$work/make.log" 2>&1 \
      || { tail -20 "$work/make.log" >&2; die "building proot failed (needs gcc, make, libtalloc-dev)"; }
    install -m 0755 "$source/src/proot" "$CACHE/tools/bin/proot"
  fi
  echo "$CACHE/tools/bin"
}

cmd_build() {
  if [ -f "$TARBALL" ]; then echo "$TARBALL"; return; fi
  local debootstrap proot qemu
  debootstrap=$(find_tool debootstrap) || die "debootstrap is missing: apt-get install debootstrap"
  proot=$(find_tool proot) || die "proot is missing: scripts/_rootfs.sh tools"
  proot_is_new_enough "$proot" || die "$proot is older than 5.4: scripts/_rootfs.sh tools"
  qemu=$(find_tool qemu-aarch64-static) || die "qemu-aarch64-static is missing: scripts/_rootfs.sh tools"
  command -v zstd >/dev/null || die "zstd is missing: apt-get install zstd"
  [ "$(id -u)" = 0 ] || die "debootstrap's first stage needs root (it creates root-owned files)"
  mkdir -p "$CACHE"
  WORK=$(mktemp -d "$CACHE/build.XXXXXX")
  local work="$WORK" root
  root="$work/rootfs"
  mkdir -p "$work/scratch"
  fake_cpuinfo > "$work/scratch/cpuinfo"
  echo "rootfs: first stage (debootstrap --foreign, $SUITE arm64)" >&2
  "$debootstrap" --foreign --arch=arm64 --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" \
    > "$work/first-stage.log" 2>&1 || { tail -20 "$work/first-stage.log" >&2; die "debootstrap first stage"; }
  if [ -L "$root/proc" ]; then rm "$root/proc"; fi
  mkdir -p "$root/proc"
  echo "rootfs: second stage (emulated, a few minutes)" >&2
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PROOT_NO_SECCOMP=1 \
    "$proot" -0 -r "$root" -q "$qemu" -b /dev -b /proc -b "$work/scratch/cpuinfo:/proc/cpuinfo" -w / \
    /debootstrap/debootstrap --second-stage > "$work/second-stage.log" 2>&1 \
    || { tail -20 "$work/second-stage.log" >&2; tail -20 "$root/debootstrap/debootstrap.log" >&2 || true;
         die "debootstrap second stage"; }
  # A copy (never a bind) of the host's CA bundle, for pip or apt inside behind the same TLS setup.
  if [ -f "$HOST_CA" ]; then install -m 0644 "$HOST_CA" "$root/etc/ssl/certs/edgeml-host-ca.pem"; fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/debootstrap"
  tar --numeric-owner -C "$root" -cf - . | zstd -q -T0 -10 -o "$work/rootfs.tar.zst"
  mv "$work/rootfs.tar.zst" "$TARBALL"
  echo "$TARBALL"
}

case "${1:-}" in
  tools) cmd_tools ;;
  build) cmd_build ;;
  path) [ -f "$TARBALL" ] || die "no cached rootfs: scripts/_rootfs.sh build"; echo "$TARBALL" ;;
  tool)  # the path of proot (5.4+), qemu-aarch64-static, debootstrap or zstd, as build finds it
    [ $# -eq 2 ] || { echo "usage: scripts/_rootfs.sh tool NAME" >&2; exit 2; }
    found=$(find_tool "$2") || die "$2 is missing (apt-get install debootstrap zstd; scripts/_rootfs.sh tools)"
    if [ "$2" = proot ] && ! proot_is_new_enough "$found"; then die "$found is older than 5.4: scripts/_rootfs.sh tools"; fi
    echo "$found" ;;
  *) echo "usage: scripts/_rootfs.sh tools|build|path|tool NAME" >&2; exit 2 ;;
esac
