"""SQLite reconfigured for a forked process that uses it from one thread only (`scan`'s load
worker; not the rules' second lane, whose time is SQLite's VM: engine/README.md, Speed).

Python's SQLite is built thread-safe ("serialized"): every call into the library (each of the
~40 parameters an INSERT binds, each step, each allocation, which also updates the memory
statistics under a mutex) takes and releases a mutex, ~97 pairs per inserted Vault row
(callgrind). A process of ours that owns SQLite alone does not need them: reconfigured
single-threaded and without memory statistics, the 100,000 inserts of the benchmark log take
0.33-0.35 s of CPU instead of 0.45-0.48 s (engine/README.md, Speed).

SQLite can only be reconfigured between `sqlite3_shutdown()` and `sqlite3_initialize()`, with
no connection in use; `single_threaded()` is therefore only for a process that was just forked
and has not used SQLite yet (the connections it inherited, which it never uses, keep their
memory: shutting the library down frees none of it). Anything unexpected (no ctypes, a
library that cannot be found or is not the one Python's `sqlite3` uses, a call refused)
leaves SQLite as it was: this only changes how fast it runs.
"""

from __future__ import annotations

import sqlite3
from typing import Any

_SQLITE_OK = 0
_CONFIG_SINGLETHREAD = 1  # sqlite3.h: SQLITE_CONFIG_SINGLETHREAD
_CONFIG_MEMSTATUS = 9  # sqlite3.h: SQLITE_CONFIG_MEMSTATUS (int: 0 = off)


def _library() -> Any | None:
    """The SQLite library Python's `sqlite3` calls, through ctypes (None if not found)."""
    try:
        import _sqlite3
        import ctypes
    except ImportError:  # pragma: no cover - ctypes or sqlite3 built without
        return None
    # The extension's handle: dlsym looks in it, then in the libraries it loaded, so this is
    # the library it calls, linked in or shared.
    path = getattr(_sqlite3, "__file__", None)
    if path is None:  # pragma: no cover - built into the interpreter
        return None
    try:
        lib = ctypes.CDLL(path)
        version = lib.sqlite3_libversion_number
        for name in ("sqlite3_shutdown", "sqlite3_initialize", "sqlite3_config"):
            getattr(lib, name)
    except (OSError, AttributeError):  # pragma: no cover - symbols not exported
        return None
    major, minor, patch = sqlite3.sqlite_version_info
    if version() != major * 1_000_000 + minor * 1_000 + patch:  # pragma: no cover
        return None
    return lib


def single_threaded() -> bool:
    """Reconfigure SQLite for this process: no mutexes, no memory statistics. True when done;
    False when not (or only in part: SQLite then works as before, and as fast). Only right
    after a fork, before this process opens a connection, in a process whose other threads
    never call SQLite."""
    lib = _library()
    if lib is None:
        return False
    import ctypes

    if lib.sqlite3_shutdown() != _SQLITE_OK:  # pragma: no cover
        lib.sqlite3_initialize()
        return False
    done = (lib.sqlite3_config(_CONFIG_SINGLETHREAD) == _SQLITE_OK
            and lib.sqlite3_config(_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK)
    if lib.sqlite3_initialize() != _SQLITE_OK:  # pragma: no cover - as good as unusable
        return False
    return done
