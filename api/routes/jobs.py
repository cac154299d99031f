"""`/api/v1/jobs`: submit (one or in bulk), list, show, operate (one, many, or a dry run of many), edit the params
of and delete jobs; their events and step logs (docs/contract.md §4).

Every route answers 404 for a job whose project the caller cannot see, exactly as for a job that does not
exist. Reads go through `scheduler.store` in a read transaction; changes go through `Operations`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session

from jobctl.api import scope
from jobctl.api.audit import Audit, audit_trail
from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import JobId, get_services
from jobctl.api.errors import COMMON_ERRORS, error_response, json_responses, responses
from jobctl.api.schemas import (
    BatchAnswer,
    BatchPreview,
    BatchResult,
    ErrorBody,
    ErrorCode,
    Event,
    Job,
    JobBatch,
    JobBulk,
    JobEdit,
    JobIdItem,
    JobList,
    JobPage,
    JobSort,
    JobSubmit,
    Period,
    ProjectKey,
)
from jobctl.api.waiting import waiting_for
from jobctl.scheduler.batch import MAX_BATCH, BatchRefused
from jobctl.scheduler.errors import Forbidden, Invalid, JobctlError, NotFound
from jobctl.scheduler.operations import Submission
from jobctl.scheduler.records import JobRecord, StepSpec
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts, edits
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.states import Action, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=responses(401, 404, 422))

#: the most jobs a page of the list holds (and the most ids it filters by)
MAX_PAGE_SIZE = 200


def _not_found(job_id: str) -> NotFound:
    return NotFound(f"job {job_id!r} not found")


def _project_of(services: Services, caller: Caller, job_id: str) -> str:
    """The job's project, if the caller can see it; `NotFound` otherwise (also for a missing job)."""
    with services.db.read() as s:
        project = jobs_store.project_of_job(s, job_id)
    caller.require_visible(project, what=f"job {job_id!r}")
    return project


# ----------------------------------------------------------------------------------------------- submit


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_201_CREATED,
    responses=responses(403, 422),
    summary="Submit a job",
)
def submit_job(
    body: JobSubmit, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Job:
    """Create a PENDING job with all its steps PENDING and answer 201 with it.

    404 if the project does not exist for the caller; 403 without the operator role; 422 for an unknown
    type, params the type refuses, a target the type does not accept, or a target that is invalid or absent.
    """
    caller.require_operator(body.project)
    try:
        job_type = services.registry.get(body.type)
        params, steps = job_type.prepare(body.params)
        target = (body.target.kind, body.target.name) if body.target else None
        services.registry.check_target(job_type, target)
    except Invalid:
        with services.db.read() as s:  # a missing project is told before anything about the body's content
            accounts.get_project(s, body.project)
        raise
    job = services.ops.submit(
        project=body.project,
        job_type=job_type.name,
        steps=steps,
        params=params,
        priority=body.priority,
        submitter=caller.name,
        target=target,
        exclusive=job_type.exclusive is not None,
    )
    return Job.from_record(job, services.settings.flower_base_url)


@router.post(
    "/bulk",
    response_model=JobList,
    status_code=status.HTTP_201_CREATED,
    responses=responses(403, 422),
    summary="Submit many jobs at once",
)
def submit_jobs(
    body: JobBulk, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> JobList:
    """Create 1 to 1,000 jobs in one transaction and answer 201 with them, in order - or none of them.

    Every job is checked first, as `POST /jobs` checks one. If any is refused, nothing is created: 422 whose
    `error.items` lists `{index, message}` for each refused job (a project the caller cannot see counts as
    missing); 403 if the caller lacks the operator role in a project they submit to.
    """
    forbidden: dict[str, list[int]] = {}
    refused: list[tuple[int, JobctlError]] = []
    submissions: list[Submission | None] = []
    prepared: dict[tuple[str, str], tuple[dict[str, Any], list[StepSpec]]] = {}  # items often repeat their params
    for index, item in enumerate(body.jobs):
        try:
            caller.require_operator(item.project)
            job_type = services.registry.get(item.type)
            key = (job_type.name, json.dumps(item.params, sort_keys=True))
            if key not in prepared:
                prepared[key] = job_type.prepare(item.params)
            params, steps = prepared[key]
            target = (item.target.kind, item.target.name) if item.target else None
            services.registry.check_target(job_type, target)
        except Forbidden:
            forbidden.setdefault(item.project, []).append(index)
            submissions.append(None)
            continue
        except (Invalid, NotFound) as exc:
            refused.append((index, exc))
            submissions.append(None)
            continue
        exclusive = job_type.exclusive is not None
        submissions.append(Submission(item.project, job_type.name, steps, params, item.priority, target, exclusive))
    if forbidden:
        where = "; ".join(f"project {p!r} (jobs {', '.join(map(str, i))})" for p, i in forbidden.items())
        raise Forbidden(f"you need the operator role to submit to {where}; none was submitted")
    jobs = services.ops.submit_many(submissions, caller.name, refused)
    flower = services.settings.flower_base_url
    return JobList(items=Job.from_records(jobs, flower))


# ------------------------------------------------------------------------------------------------- list


@router.get("", response_model=JobPage, responses=responses(422), summary="List jobs")
def list_jobs(
    project: list[ProjectKey] | None = Query(None, max_length=100, description="repeatable; omitted: all visible"),
    status_: list[JobStatus] | None = Query(None, alias="status", description="repeatable"),
    type: str | None = Query(None, max_length=64, description="the job type"),
    error_code: list[ErrorCode] | None = Query(
        None, max_length=100, description="repeatable; jobs whose error has one of these codes (docs/contract.md §2.8)"
    ),
    q: str | None = Query(None, min_length=1, max_length=512, description="job-id prefix or target-name substring"),
    ids: list[JobIdItem] | None = Query(
        None,
        alias="id",
        max_length=MAX_PAGE_SIZE,
        description="repeatable; only these jobs (an id the caller cannot see matches none)",
    ),
    period: Period | None = Query(
        None, description="created within this period (default: all); other than `all`, not with since/until (422)"
    ),
    since: datetime | None = Query(
        None, description="created at or after (ISO-8601; naive means UTC); not after until, not with period (422)"
    ),
    until: datetime | None = Query(
        None, description="created before (ISO-8601; naive means UTC); not with period (422)"
    ),
    sort: JobSort = Query(JobSort.CREATED_AT_DESC),
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> JobPage:
    """One page of the jobs the caller can see that match every given filter, and how many match in all.

    A `project` the caller cannot see is a 404; `period` other than `all` together with `since`/`until`
    is a 422, as is `since` after `until`.
    """
    since, until = scope.window(period, since, until)
    with services.db.read() as s:
        project_ids = scope.project_ids(s, caller, project)
        items, total = jobs_store.list_jobs(
            s,
            jobs_store.JobQuery(
                project_ids=project_ids,
                statuses=tuple(status_ or ()),
                type=type,
                error_codes=tuple(error_code or ()),
                ids=tuple(ids or ()),
                q=q,
                since=since,
                until=until,
                sort=sort.value,
                page=page,
                page_size=page_size,
            ),
        )
        waiting = waiting_for(services, s, items)
    return JobPage(
        items=[Job.from_record(j, services.settings.flower_base_url, waiting_for=waiting.get(j.id)) for j in items],
        total=total,
        page=page,
        page_size=page_size,
    )


# ------------------------------------------------------------------------------------------------ batch


@router.post(
    "/batch",
    response_model=BatchAnswer,
    responses={
        **responses(403, 422),
        409: {"model": ErrorBody, "description": "atomic: some job refuses; nothing changed; `error.refused`"},
    },
    summary="Pause, resume, restart, discard or delete many jobs (or tell what it would do: dry_run)",
)
def batch_jobs(
    body: JobBatch,
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
    audit: Audit = Depends(audit_trail),
) -> BatchAnswer | JSONResponse:
    """Take `action` on the jobs named by `ids`, or on every job matching `filter` (oldest first), at most 1000
    (422 above). Each job succeeds or is refused on its own: `{"results": [{id, ok, status, error}]}`, where a
    refused job carries its current `status` and the reason, and a job the caller cannot see is reported as not
    found. With `atomic`, nothing changes unless every job allows the action: 409 with `error.refused` listing
    the jobs that refuse it.

    403 unless the caller is an operator of the batch's project, or an admin when it spans several projects:
    with `ids`, the projects of the jobs the caller can see; with `filter`, the projects it names (default: every
    visible one) - whatever the filter matches. 404 if `filter.project` names a project the caller cannot see.

    With `dry_run`, nothing changes: the answer is the one the batch would get now - each job ok with the state it
    would be left in, or refused with the reason (an atomic one: 409) - plus a `preview` of how many jobs would
    change, in which projects.

    Every batch is recorded in the audit log: its action and selection, and how many jobs it changed and refused
    (a dry run: `dry_run`, and how many would change).
    """
    selection: dict[str, Any] = {"action": body.action.value, "atomic": body.atomic}
    if body.dry_run:
        selection["dry_run"] = True
    if body.ids is not None:
        selection["ids"] = body.ids[:AUDITED_IDS]
        selection["count"] = len(body.ids)
    else:
        assert body.filter is not None
        selection["filter"] = body.filter.model_dump(mode="json", exclude_defaults=True)
    subject = f"{len(body.ids)} job(s)" if body.ids is not None else "filter"
    try:
        with audit.attempt("jobs.batch", subject, selection) as change:
            with services.db.read() as s:
                ids, hidden = _batch_ids(s, caller, body)
            if body.dry_run:
                return _preview(services, ids, body, hidden, change.details)
            try:
                items = services.ops.batch(
                    ids, Action(body.action.value), caller.name, atomic=body.atomic, hidden=hidden
                )
            except BatchRefused as exc:
                change.details["refused"] = len(exc.refused)
                raise
            change.details["done"] = sum(1 for i in items if i.ok)
            change.details["refused"] = sum(1 for i in items if not i.ok)
    except BatchRefused as exc:
        refused = [BatchResult.from_item(i).model_dump(mode="json") for i in exc.refused]
        return error_response(409, exc.code, exc.message, refused=refused)
    return BatchAnswer(results=[BatchResult.from_item(i) for i in items])


def _preview(
    services: Services, ids: list[str], body: JobBatch, hidden: list[str], audited: dict[str, Any]
) -> BatchAnswer:
    """The dry run of the batch (`Operations.preview_batch`), its counts added to the audit entry's `audited`."""
    try:
        preview = services.ops.preview_batch(ids, Action(body.action.value), atomic=body.atomic, hidden=hidden)
    except BatchRefused as exc:
        audited["refused"] = len(exc.refused)
        raise
    results = [BatchResult.from_item(i) for i in preview.items]
    changed = sum(1 for r in results if r.ok)
    audited["would_change"] = changed
    audited["refused"] = len(results) - changed
    summary = BatchPreview(changed=changed, refused=len(results) - changed, projects=preview.projects)
    return BatchAnswer(results=results, preview=summary)


def _batch_ids(s: Session, caller: Caller, body: JobBatch) -> tuple[list[str], list[str]]:
    """The ids the batch is over, and those of them the caller cannot see; `Forbidden` unless the caller may run
    it (see `batch_jobs`), `Invalid` if its filter matches more than `MAX_BATCH` jobs."""
    if body.ids is not None:
        ids = list(dict.fromkeys(body.ids))
        projects = jobs_store.projects_of_jobs(s, ids)
        _may_batch(caller, {p for p in projects.values() if caller.can_see(p)})
        return ids, [i for i in ids if i in projects and not caller.can_see(projects[i])]
    assert body.filter is not None  # JobBatch holds exactly one of the two
    wanted = body.filter
    since, until = scope.window(wanted.period, wanted.since, wanted.until)
    project_ids = scope.project_ids(s, caller, wanted.projects)
    if not caller.admin:
        _may_batch(caller, set(wanted.projects or caller.visible_projects() or []))
    query = jobs_store.JobQuery(
        project_ids=project_ids,
        statuses=tuple(wanted.statuses),
        type=wanted.type,
        error_codes=tuple(wanted.error_codes),
        q=wanted.q,
        since=since,
        until=until,
    )
    ids = jobs_store.matching_job_ids(s, query, limit=MAX_BATCH + 1)
    if len(ids) > MAX_BATCH:
        raise Invalid(f"the filter matches more than {MAX_BATCH} jobs, the most a batch may hold; narrow it")
    return ids, []


AUDITED_IDS = 100  # a batch's audit entry names this many of its ids, and counts them all


def _may_batch(caller: Caller, projects: set[str]) -> None:
    """`Forbidden` unless the caller may operate every one of `projects` and, if there are several, is an admin."""
    if len(projects) > 1 and not caller.admin:
        raise Forbidden("only administrators may run a batch over jobs of several projects")
    for project in sorted(projects):
        caller.require_operator(project)


# ------------------------------------------------------------------------------------------ show, operate


@router.get("/{job_id}", response_model=Job, summary="One job with its steps")
def get_job(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Job:
    """The job with its steps; 404 if it does not exist or the caller cannot see its project."""
    job = services.db.query(lambda conn: jobs_store.get_job(conn, job_id))
    caller.require_visible(job.project, what=f"job {job_id!r}")
    return _with_waiting(job, services)


def _operate(services: Services, caller: Caller, job_id: str, action: Action) -> JobRecord | None:
    project = _project_of(services, caller, job_id)
    caller.require_operator(project, what=f"job {job_id!r}")
    return services.ops.operate(job_id, action, caller.name)


_OPERATE_ERRORS = responses(403, 409)


@router.post("/{job_id}/pause", response_model=Job, responses=_OPERATE_ERRORS, summary="Pause a PENDING or RUNNING job")
def pause_job(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Job:
    """Pause the job: 200 with it, or 409 (nothing changed) if its state does not allow it."""
    return _answer(_operate(services, caller, job_id, Action.PAUSE), job_id, services)


@router.post("/{job_id}/resume", response_model=Job, responses=_OPERATE_ERRORS, summary="Resume a PAUSED or ERROR job")
def resume_job(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Job:
    """Resume the job from its first unfinished step: 200 with it, or 409 (nothing changed)."""
    return _answer(_operate(services, caller, job_id, Action.RESUME), job_id, services)


@router.post(
    "/{job_id}/restart", response_model=Job, responses=_OPERATE_ERRORS, summary="Restart a RUNNING, PAUSED or ERROR job"
)
def restart_job(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Job:
    """Reset every step and make the job PENDING again: 200 with it, or 409 (nothing changed)."""
    return _answer(_operate(services, caller, job_id, Action.RESTART), job_id, services)


@router.post(
    "/{job_id}/discard", response_model=Job, responses=_OPERATE_ERRORS, summary="Discard a job that is not final"
)
def discard_job(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Job:
    """Discard the job for good: 200 with it, or 409 (nothing changed) if it is already final."""
    return _answer(_operate(services, caller, job_id, Action.DISCARD), job_id, services)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(403, 409),
    summary="Delete a FINISHED or DISCARDED job",
)
def delete_job(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Response:
    """Remove the job with its steps, logs and events: 204, or 409 (nothing changed) if it is not final."""
    _operate(services, caller, job_id, Action.DELETE)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/{job_id}",
    response_model=Job,
    responses=responses(403, 409, 422),
    summary="Edit the params of a PAUSED or ERROR job",
)
def edit_job(
    body: JobEdit,
    job_id: str = JobId,
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> Job:
    """Replace the job's params: 200 with the job. They are validated by its type exactly as at submission (422
    with the type's message otherwise) and must plan the steps the job has (422); the job must be PAUSED or
    ERROR (409, with its `status` and the operations `allowed` now). Nothing changes when it is refused.

    Finished steps keep their outputs; the unfinished ones run with the new params once the job is resumed. The
    change is an `edit` event, its `details` holding the old and the new params. Operator role needed."""
    job = services.db.query(lambda conn: jobs_store.get_job(conn, job_id))
    caller.require_visible(job.project, what=f"job {job_id!r}")
    caller.require_operator(job.project, what=f"job {job_id!r}")
    edits.require_editable(job.status)  # its state first; checked again under the row's lock
    params, steps = services.registry.get(job.type).prepare(body.params)
    return _answer(services.ops.edit_params(job.id, params, steps, caller.name), job_id, services)


def _answer(job: JobRecord | None, job_id: str, services: Services) -> Job:
    if job is None:  # only a delete returns no job; kept for the type checker
        raise _not_found(job_id)
    return _with_waiting(job, services)


def _with_waiting(job: JobRecord, services: Services) -> Job:
    """The job's JSON, with why it waits if it is PENDING (two more statements then: `api.waiting`)."""
    waiting: dict[str, str] = {}
    if job.status is JobStatus.PENDING:
        waiting = services.db.query(lambda conn: waiting_for(services, conn, [job]))
    return Job.from_record(job, services.settings.flower_base_url, waiting_for=waiting.get(job.id))


# -------------------------------------------------------------------------------------- events and logs


@router.get("/{job_id}/events", response_model=list[Event], summary="The job's history of state changes")
def job_events(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> list[Event]:
    """Every change of the job's state, oldest first: `{at, actor, action, from, to, reason}`."""
    _project_of(services, caller, job_id)
    with services.db.read() as s:
        events = jobs_store.job_events(s, job_id)
    return [Event.from_record(e) for e in events]


@router.get(
    "/{job_id}/steps/{index}/log",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the log lines, oldest first"},
        **json_responses(*COMMON_ERRORS, 401, 404),
    },
    summary="A step's log, as text",
)
def step_log(
    job_id: str = JobId,
    index: int = Path(ge=0, le=10_000),
    tail: int | None = Query(None, ge=1, le=100_000, description="only the last N lines"),
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> PlainTextResponse:
    """The step's log lines (the last `tail` of them if given), one per line; 404 if there is no such step."""
    _project_of(services, caller, job_id)
    with services.db.read() as s:
        lines = jobs_store.step_log(s, job_id, index, tail)
    return PlainTextResponse("".join(f"{line}\n" for line in lines))
