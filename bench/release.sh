# Sourced by the benchmarks that run berthd: ensure_release_build makes, or reuses, a release
# build of berthd, berth-runtime and berth-monitor in $BIN (= $BUILD/release), from $REPO.
# REBUILD=1 always rebuilds; a build older than Sources/ is reused with a note.
ensure_release_build() {
  if [ "${REBUILD:-0}" = 1 ] || ! [ -x "$BIN/berthd" ] || ! [ -x "$BIN/berth-runtime" ] || ! [ -x "$BIN/berth-monitor" ]; then
    echo "# building berthd in release mode into $BUILD" >&2
    (cd "$REPO" &&
      swift build -c release --build-path "$BUILD" --static-swift-stdlib --product berth-runtime >&2 &&
      swift build -c release --build-path "$BUILD" --product berthd >&2 &&
      scripts/build-c.sh "$BIN" >&2)
  elif [ -n "$(find "$REPO/Sources" -newer "$BIN/berthd" -type f -print -quit)" ]; then
    echo "# note: $BIN/berthd is older than some of Sources/ (REBUILD=1 to rebuild)" >&2
  fi
}
