"""Line sources: files (tailed, rotation-aware, with persisted offsets) and stdin.

A file's offset is {"inode", "pos"}: `pos` is the byte after the last COMPLETE line handed out,
so it can be committed with the state derived from those lines. On start, the saved offset is
used when the inode still matches (and the file was not truncated below it); when the file was
rotated while we were down, the rest of the old inode is read first if it is still in the same
directory (e.g. `audit.log.1`). While tailing: a new inode at the path (rename rotation) drains
the old file then reopens the path from 0; a size below our position (copytruncate) restarts at 0.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


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

    def offset(self) -> dict[str, Any]:
        return {"inode": self.inode, "pos": self.pos}

    def _open_path(self, pos: int = 0) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - held while tailing
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        if pos > st.st_size:
            pos = 0
        fh.seek(pos)
        self.fh, self.inode, self.pos, self.buf, self.draining = fh, st.st_ino, pos, b"", False
        return True

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
        data = self.fh.read(max_bytes)
        if data:
            buf = self.buf + data
            cut = buf.rfind(b"\n")
            if cut < 0:
                self.buf = buf
                return []
            lines = buf[:cut].split(b"\n")
            self.buf = buf[cut + 1:]
            self.pos += cut + 1  # buf began at self.pos
            return lines
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
        """At the end of a one-shot run: a last line without its newline is still a line."""
        if self.buf.strip():
            line, self.buf = self.buf, b""
            self.pos += len(line)
            return [line]
        return []

    def at_eof(self) -> bool:
        if self.fh is None:
            return True
        return self.fh.tell() >= os.fstat(self.fh.fileno()).st_size and not self.draining

    def close(self) -> None:
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
        while True:
            try:
                data = os.read(self.fd, CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            cut = buf.rfind(b"\n")
            if cut >= 0:
                self.out.put(("lines", self.name, buf[:cut].split(b"\n")))
                buf = buf[cut + 1:]
        if buf.strip():
            self.out.put(("lines", self.name, [buf]))
        self.done.set()
        self.out.put(("eof", self.name, None))
