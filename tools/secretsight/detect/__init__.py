"""Stateful detectors over normalized events (issue: Stateful detectors).

    store = open_store(None)                 # in-memory SQLite; "sqlite:///state.db"; "redis://..."
    det = Detectors(config, store, only=None)
    findings = [f for e in events for f in det.process(e)] + det.finish()

See docs/detectors.md for what each detector means, its state and its limits.
"""

from secretsight.detect.detectors import BATCH_DETECTORS, DETECTORS, Detectors
from secretsight.detect.stores import Store, open_store

__all__ = ["BATCH_DETECTORS", "DETECTORS", "Detectors", "Store", "open_store"]
