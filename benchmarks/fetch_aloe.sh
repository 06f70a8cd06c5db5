#!/usr/bin/env bash
# Middlebury 2006 Aloe as OpenCV ships it in samples/data (aloeL.jpg, aloeR.jpg, aloeGT.png), for
# `benchmarks/real_middlebury.py --scene aloe` and tests/test_aloe.py:
#   bash benchmarks/fetch_aloe.sh [DEST]        (default data/aloe; `make aloe-data`)
# From Debian's opencv-doc package (apt-get download: no root needed), else from OpenCV's GitHub. A source's files
# must match the SHA-256 below (else the next source is tried); the three are copied into DEST only then, each
# through a temporary name.
set -euo pipefail
dest=${1:-data/aloe}
files=(aloeGT.png aloeL.jpg aloeR.jpg)
sums="39ce4f3cb48d797d1091c5152f93361d8104298c337f8a1c134d87dda3442c04  aloeGT.png
cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee  aloeL.jpg
9b23100df31a846bc6e6a6545563b2b4120b948c9835c7d36cde00af77f4503e  aloeR.jpg"

if ! command -v sha256sum >/dev/null; then
  echo "fetch_aloe: error: sha256sum (coreutils) is needed to check the files" >&2
  exit 1
fi
checked() { (cd "$1" && echo "$sums" | sha256sum --check --quiet --status 2>/dev/null); }

if [ -d "$dest" ] && checked "$dest"; then
  echo "fetch_aloe: $dest already holds the three files"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"; rm -f "$dest"/.aloe*.part' EXIT

from_debian() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  local dir="$work/debian" inside=./usr/share/doc/opencv-doc/examples/data
  mkdir -p "$dir"
  (cd "$dir" && apt-get download opencv-doc >/dev/null 2>&1) || return 1
  dpkg-deb --fsys-tarfile "$dir"/opencv-doc_*.deb | tar -x -C "$dir" "${files[@]/#/$inside/}" || return 1
  mv "$dir/$inside"/aloe* "$dir/" && checked "$dir" && echo "$dir"
}

from_github() {
  command -v curl >/dev/null || return 1
  local dir="$work/github" f
  mkdir -p "$dir"
  for f in "${files[@]}"; do
    curl -fsSL --max-time 60 -o "$dir/$f" "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/$f" \
      || return 1
  done
  checked "$dir" && echo "$dir"
}

if got=$(from_debian); then
  source="Debian's opencv-doc"
elif got=$(from_github); then
  source="OpenCV's GitHub (samples/data)"
else
  echo "fetch_aloe: error: could not get ${files[*]} matching their SHA-256 from Debian's opencv-doc" \
       "(apt-get download) or OpenCV's GitHub; nothing written; put them in $dest by hand" >&2
  exit 1
fi
mkdir -p "$dest"
for f in "${files[@]}"; do
  cp "$got/$f" "$dest/.$f.part" && mv "$dest/.$f.part" "$dest/$f"
done
echo "fetch_aloe: ${files[*]} from $source -> $dest"
