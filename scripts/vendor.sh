#!/usr/bin/env bash
# Fetch the browser assets listed in vendor.lock from the npm registry (`npm pack`, which
# checks each tarball's integrity) and copy one file out of each into the repository.
# Called by `make vendor`; the files are not committed (see .gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=vendor.lock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -v '^\s*#' "$lock" | while read -r spec inner dest; do
    [ -n "$spec" ] || continue
    name=${spec%@*}
    version=${spec##*@}
    tarball="$work/${name//\//-}-$version.tgz"
    if [ ! -f "$tarball" ]; then
        (cd "$work" && npm pack --silent "$spec" >/dev/null)  # writes $name-$version.tgz
    fi
    mkdir -p "$(dirname "$dest")"
    tar -xzf "$tarball" -O "$inner" > "$dest.tmp"
    mv "$dest.tmp" "$dest"
    echo "vendored $spec $inner -> $dest"
done
