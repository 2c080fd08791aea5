#!/usr/bin/env bash
# Builds berth-init, the static PID 1 of `docker run --init`, into DIR (default .build/debug),
# next to berthd, which looks for it there. Plain cc: it must not link the Swift runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/debug}
mkdir -p "$out"
cc -std=c11 -static -Os -s -Wall -Wextra -Werror -o "$out/berth-init.tmp" Sources/berth-init/main.c
mv "$out/berth-init.tmp" "$out/berth-init"
