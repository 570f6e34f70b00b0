"""Reproducible .tar.gz archives: sorted members, fixed times, owners and modes, and a gzip
header with no name or time, so two builds of the same files are byte-identical (the release
pack and the Splunk app package both use it)."""

from __future__ import annotations

import gzip
import io
import tarfile

# 1980-01-01: a fixed member time (zip-era tools dislike 1970).
FIXED_MTIME = 315532800


def tar_gz(files: dict[str, bytes], prefix: str) -> bytes:
    """The archive of `files` (path -> bytes) under `prefix/`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in sorted(files):
            data = files[rel]
            info = tarfile.TarInfo(f"{prefix}/{rel}")
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o755 if rel.endswith((".sh", ".py")) and data.startswith(b"#!") else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
