"""Operations plumbing: request ids, structured logs, Prometheus metrics, worker heartbeats."""
