"""The baseline of the API-under-load row: a bare FastAPI app with the two read routes the load asks for, each
answering a constant without touching a database, Redis or a token.

Started by the benchmark as `python -m uvicorn jobctl.bench.bare:app` with the server settings `jobctl api` uses
(uvicorn with httptools and uvloop, one process, no access log), so the difference between the two rows is
jobctl's own work: authentication, the database read, validation and the response model.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)

JOB: dict[str, Any] = {"id": "", "project": "bench", "type": "bench_noop", "status": "RUNNING", "progress": 40.0}


@app.get("/api/v1/jobs")
async def list_jobs() -> dict[str, Any]:
    """A page of one constant job."""
    return {"items": [JOB], "total": 1, "page": 1, "page_size": 20}


@app.get("/api/v1/jobs/{job_id}")
async def get_job(job_id: str) -> dict[str, Any]:
    """The constant job, under the id asked for."""
    return {**JOB, "id": job_id}
