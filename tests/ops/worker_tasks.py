"""Tasks loaded only by the worker that tests/ops/test_worker_process.py starts (`-I` option)."""

from __future__ import annotations

from config.celery import app


@app.task(name="ops_test.echo")
def echo(*, job_id: str) -> str:
    return job_id


@app.task(name="ops_test.fail")
def fail(*, job_id: str) -> None:
    raise ValueError(f"job {job_id} cannot be processed")
