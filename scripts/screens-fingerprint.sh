#!/usr/bin/env bash
# Prints the fingerprint of the screens the README's pictures show: berth's version and the
# sha256 of the snapshot files listed in assets/recorded-screens.txt, in order. scripts/record-demo.sh
# stores it in assets/recorded-fingerprint; the suite (readme::the_pictures_are_of_the_current_screens)
# compares the two.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
files=()
while read -r f; do
  case "$f" in ''|'#'*) continue ;; esac
  [ -f "$f" ] || { echo "screens-fingerprint: $f (listed in assets/recorded-screens.txt) does not exist" >&2; exit 1; }
  files+=("$f")
done < assets/recorded-screens.txt
echo "berth $version screens $(cat "${files[@]}" | sha256sum | cut -d' ' -f1)"
