"""The billable-job core: one lifecycle (claim, heartbeat, complete, fail, cancel, reap) shared by
every kind of job a worker runs and a quota pays for. It imports no app; apps describe their jobs
with a `JobKind` and inject their billing."""
