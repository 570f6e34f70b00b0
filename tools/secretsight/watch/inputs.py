"""Line sources: files (tailed, rotation-aware, with persisted offsets) and stdin.

A file's offset is {"inode", "pos"}: `pos` is the byte after the last COMPLETE line handed out,
so it can be committed with the state derived from those lines. On start, the saved offset is
used when the inode still matches (and the file was not truncated below it); when the file was
rotated while we were down, the rest of the old inode is read first if it is still in the same
directory (e.g. `audit.log.1`). While tailing: a new inode at the path (rename rotation) drains
the old file then reopens the path from 0; a size below our position (copytruncate) restarts at 0.
"""

from __future__ import annotations

import gzip
import os
import queue
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark before the first line is not data


class FileInput:
    def __init__(self, path: str | Path, offset: dict[str, Any] | None = None) -> None:
        self.path = Path(path).resolve()
        self.name = f"file:{self.path}"
        self.fh: Any = None
        self.inode: int | None = None
        self.pos = 0  # offset of the first byte not yet handed out as a complete line
        self.buf = b""
        self.draining = False  # reading the rest of a rotated-away inode
        self.rotations = 0
        self.truncations = 0
        self._saved = offset
        # A gzip file (a rotated archive) is read once through a decompressor; `pos` then
        # counts DECOMPRESSED bytes (a restart decompresses again up to it).
        self.gz: gzip.GzipFile | None = None
        self.gz_done = False
        self.lines_out = 0  # complete lines handed out (for error messages)
        self.error: str | None = None  # why the file could not be read to its end
        self._cut = False

    def offset(self) -> dict[str, Any]:
        return {"inode": self.inode, "pos": self.pos}

    def _open_path(self, pos: int = 0) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - held while tailing
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        self.gz, self.gz_done = None, False
        magic = fh.read(2)
        fh.seek(0)
        if magic == GZIP_MAGIC:
            self.gz = gzip.GzipFile(fileobj=fh, mode="rb")
            try:
                self.gz.seek(pos)
            except (OSError, EOFError, zlib.error):
                pos = 0
                self.gz = gzip.GzipFile(fileobj=fh, mode="rb")
                fh.seek(0)
        else:
            if pos > st.st_size:
                pos = 0
            fh.seek(pos)
        self.fh, self.inode, self.pos, self.buf, self.draining = fh, st.st_ino, pos, b"", False
        return True

    def _read(self, max_bytes: int) -> bytes:
        if self.gz is None:
            return self.fh.read(max_bytes)
        if self.gz_done:
            return b""
        # read1, not read: read(n) of a truncated stream raises and loses what it had read
        parts: list[bytes] = []
        got = 0
        try:
            while got < max_bytes:
                chunk = self.gz.read1(max_bytes - got)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            self.gz_done = True
            data = b"".join(parts)
            seen = self.buf + data  # self.buf (no newline) began at self.pos
            complete = self.lines_out + seen.count(b"\n")
            offset = self.pos + seen.rfind(b"\n") + 1
            self.error = (f"{self.path}: truncated or corrupt gzip after line {complete} "
                          f"(decompressed offset {offset}): {exc}")
            self._cut = True  # the record cut by the truncation is incomplete: not a line
            return data
        data = b"".join(parts)
        if not data:
            self.gz_done = True
        return data

    def _start(self) -> bool:
        saved, self._saved = self._saved, None
        if saved and saved.get("inode") is not None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino == saved["inode"]:
                if st.st_size >= saved["pos"]:
                    return self._open_path(saved["pos"])
                self.truncations += 1
                return self._open_path(0)
            # Rotated while we were down: finish the old inode if it is still here.
            for sibling in sorted(self.path.parent.glob(self.path.name + "*")):
                try:
                    sst = sibling.stat()
                except OSError:
                    continue
                if sst.st_ino == saved["inode"] and sst.st_size >= saved["pos"]:
                    fh = open(sibling, "rb")  # noqa: SIM115 - held while draining
                    fh.seek(saved["pos"])
                    self.fh, self.inode, self.pos = fh, sst.st_ino, saved["pos"]
                    self.draining = True
                    return True
        return self._open_path(0)

    def poll(self, max_bytes: int = CHUNK) -> list[bytes]:
        """Complete lines available now (possibly none)."""
        if self.fh is None and not self._start():
            return []
        data = self._read(max_bytes)
        if data:
            # split the read itself: joining it to the partial line first, then cutting at
            # its last newline, copied each read twice more (~40% of this method)
            lines = data.split(b"\n")
            rest = lines.pop()  # after the last newline: the next partial line
            buf = self.buf
            if not lines:  # no newline yet
                self.buf = buf + rest
                return []
            if buf:
                lines[0] = buf + lines[0]
            if self.pos == 0 and lines[0][:3] == BOM:
                lines[0] = lines[0][3:]
            self.buf = rest
            self.pos += len(buf) + len(data) - len(rest)  # buf began at self.pos
            self.lines_out += len(lines)
            return lines
        if self.gz is not None:
            return []  # an archive: neither rotated nor truncated in place
        return self._at_eof()

    def _at_eof(self) -> list[bytes]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self.draining or (st is not None and st.st_ino != self.inode):
            # Rotated: the old inode is complete; its last partial line is a line.
            tail = [self.buf] if self.buf.strip() else []
            self.fh.close()
            self.rotations += 1
            if not self._open_path(0):
                self.fh = None
                self.inode = None
                self.pos = 0
            return tail
        if st is not None and st.st_size < self.pos + len(self.buf):
            self.truncations += 1
            self.fh.seek(0)
            self.pos, self.buf = 0, b""
        return []

    def flush_partial(self) -> list[bytes]:
        """At the end of a one-shot run: a last line without its newline is still a line
        (unless a truncated gzip cut it)."""
        if self._cut:
            self.buf = b""
        if self.buf.strip():
            line, self.buf = self.buf, b""
            if self.pos == 0 and line[:3] == BOM:
                line = line[3:]
            self.pos += len(line)
            self.lines_out += 1
            return [line]
        return []

    def at_eof(self) -> bool:
        if self.fh is None:
            return True
        if self.gz is not None:
            return self.gz_done
        return self.fh.tell() >= os.fstat(self.fh.fileno()).st_size and not self.draining

    def close(self) -> None:
        if self.gz is not None:
            self.gz.close()
        if self.fh is not None:
            self.fh.close()


class StdinInput:
    """Reads stdin (or any fd) in a thread: whatever is available is handed on at once, so an
    interactive pipe is not held back by buffering. Not replayable, so it has no offset."""

    name = "stdin"

    def __init__(self, out: queue.Queue, fd: int | None = None) -> None:
        self.out = out
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stdin", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        buf = b""
        first = True
        while True:
            try:
                data = os.read(self.fd, CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            if first and len(buf) >= len(BOM):
                first = False
                if buf.startswith(BOM):
                    buf = buf[len(BOM):]
            cut = buf.rfind(b"\n")
            if cut >= 0:
                self.out.put(("lines", self.name, buf[:cut].split(b"\n")))
                buf = buf[cut + 1:]
        if buf.strip():
            self.out.put(("lines", self.name, [buf]))
        self.done.set()
        self.out.put(("eof", self.name, None))
