"""`secretsight watch`: stream audit events through the stateful detectors.

inputs.py (files with rotation-aware tailing, stdin), http.py (POST /ingest, GET /metrics),
decode.py (raw or normalized lines), outputs.py (stdout, file, HTTP), metrics.py (Prometheus
text format), runner.py (the loop: process, commit state + offsets together, emit).
"""
