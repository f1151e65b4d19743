"""Leased, queued work: the abstract LeasedWork model (status, worker, lease, attempts and
the conditional state changes), the workers' heartbeats, and what every worker task
shares (leases.py: who this worker is, heartbeat threads, reclaim of dead workers' work).

Below albums, generation and training, which build their queued rows on it; it imports
none of them.
"""
