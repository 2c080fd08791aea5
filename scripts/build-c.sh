#!/usr/bin/env bash
# Builds Berth's two C executables into DIR (default .build/debug), next to berthd, which looks
# for them there. Plain cc, not SwiftPM: SwiftPM links every executable through swiftc and the
# Swift runtime, which neither uses.
#   berth-monitor  one per container: linking libswiftCore would triple its memory
#   berth-init     the PID 1 of `docker run --init`: static, since the container's libc may be anything
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/debug}
mkdir -p "$out"
CFLAGS=(-std=gnu11 -Os -Wall -Wextra -Werror)
cc "${CFLAGS[@]}" -ISources/CBerthSys/include -o "$out/berth-monitor.tmp" Sources/berth-monitor/*.c Sources/CBerthSys/sealed_exe.c Sources/CBerthSys/mount.c
cc "${CFLAGS[@]}" -static -s -o "$out/berth-init.tmp" Sources/berth-init/main.c
mv "$out/berth-monitor.tmp" "$out/berth-monitor"
mv "$out/berth-init.tmp" "$out/berth-init"
