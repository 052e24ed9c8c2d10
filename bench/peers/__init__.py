"""The peer systems' own code, run only by each peer's virtual environment (never imported by the
harness, whose environment has neither saq nor taskiq): `saq_peer` and `taskiq_peer` each hold the
worker's settings and an agent that enqueues and reads job records the library's way; `agent` is the
line protocol between an agent and the harness (bench/peer_systems.py). Standard library only here."""
