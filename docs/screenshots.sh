#!/usr/bin/env bash
# docs/screenshots.sh [OUT_DIR]: regenerates the web interface's screenshots (default
# docs/screenshots/*.png). berth runs in-process with demo content (tests/it/browser/
# screenshots.rs) and Debian's headless Chromium captures the login page, the collections
# list, a repository, a manifest and a collection's members at 1280x800, and the repository
# page at a phone's width. Needs `chromium` and `chromium-driver` (as .ci/run installs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-docs/screenshots}
mkdir -p "$out"
BERTH_SCREENSHOTS=$(cd "$out" && pwd) \
    cargo test --test it browser::screenshots::capture -- --ignored --exact --nocapture
# Smaller files where optipng is installed (lossless; the screenshots work without it).
if command -v optipng >/dev/null; then
    optipng -quiet -o2 "$out"/*.png
fi
ls -l "$out"/*.png
