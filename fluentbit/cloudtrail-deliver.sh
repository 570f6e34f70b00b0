#!/usr/bin/env bash
# Deliver CloudTrail S3 objects (gzipped `{"Records":[...]}`, no final newline) into the
# directory Fluent Bit tails (CLOUDTRAIL_LOG_GLOB in fluent-bit.yaml / .conf):
# - decompressed: tail reads lines of text, not gzip;
# - ending with a newline: tail holds an unterminated last line back until a newline arrives,
#   which for a finished object never happens (the whole Records file is that one line);
# - renamed into place: tail never sees a half-written file (`.NAME.partial` matches no glob).
#
# usage: cloudtrail-deliver.sh OBJECT.json.gz... DIR      (tests/fluentbit/test_fluentbit_faults.py)
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: $0 OBJECT.json.gz... DIR" >&2
  exit 2
fi
dir="${*: -1}"
for obj in "${@:1:$#-1}"; do
  name="$(basename -- "$obj" .gz)"
  case "$name" in *.json) ;; *) name="$name.json" ;; esac
  tmp="$dir/.$name.partial"
  gzip -dc -- "$obj" > "$tmp"
  if [ -s "$tmp" ] && [ "$(tail -c 1 -- "$tmp" | wc -l)" -eq 0 ]; then
    printf '\n' >> "$tmp"
  fi
  mv -f -- "$tmp" "$dir/$name"
done
