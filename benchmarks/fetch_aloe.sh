#!/usr/bin/env bash
# Middlebury 2006 Aloe as OpenCV ships it in samples/data (aloeL.jpg, aloeR.jpg, aloeGT.png), for
# `benchmarks/real_middlebury.py --scene aloe` and tests/test_aloe.py:
#   bash benchmarks/fetch_aloe.sh [DEST]        (default data/aloe; `make aloe-data`)
# From Debian's opencv-doc package (apt-get download: no root needed), else from OpenCV's GitHub. Each file is
# checked against the SHA-256 below and the three are moved into DEST only when all are right.
set -euo pipefail
dest=${1:-data/aloe}
files=(aloeGT.png aloeL.jpg aloeR.jpg)
sums="39ce4f3cb48d797d1091c5152f93361d8104298c337f8a1c134d87dda3442c04  aloeGT.png
cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee  aloeL.jpg
9b23100df31a846bc6e6a6545563b2b4120b948c9835c7d36cde00af77f4503e  aloeR.jpg"

if [ -d "$dest" ] && (cd "$dest" && echo "$sums" | sha256sum --check --quiet --status 2>/dev/null); then
  echo "fetch_aloe: $dest already holds the three files"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

from_debian() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  (cd "$work" && apt-get download opencv-doc >/dev/null 2>&1) || return 1
  local inside=./usr/share/doc/opencv-doc/examples/data
  dpkg-deb --fsys-tarfile "$work"/opencv-doc_*.deb \
    | tar -x -C "$work" "${files[@]/#/$inside/}" || return 1
  mv "$work/usr/share/doc/opencv-doc/examples/data/"aloe* "$work/"
}

from_github() {
  command -v curl >/dev/null || return 1
  local f
  for f in "${files[@]}"; do
    curl -fsSL --max-time 60 -o "$work/$f" "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/$f" \
      || return 1
  done
}

if from_debian; then
  source="Debian's opencv-doc"
elif from_github; then
  source="OpenCV's GitHub (samples/data)"
else
  echo "fetch_aloe: error: could not get ${files[*]} from Debian's opencv-doc (apt-get download) or from" \
       "OpenCV's GitHub; put them in $dest by hand" >&2
  exit 1
fi
if ! (cd "$work" && echo "$sums" | sha256sum --check --quiet); then
  echo "fetch_aloe: error: the files from $source do not match the expected SHA-256; nothing written" >&2
  exit 1
fi
mkdir -p "$dest"
for f in "${files[@]}"; do
  cp "$work/$f" "$dest/.$f.part" && mv "$dest/.$f.part" "$dest/$f"
done
echo "fetch_aloe: ${files[*]} from $source -> $dest"
