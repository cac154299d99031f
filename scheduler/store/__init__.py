"""TEMP re-exports."""

from jobctl.scheduler.store.accounts import (  # noqa: F401
    ROLES,
    count_users,
    create_project,
    create_user,
    get_project,
    get_user,
    list_projects,
    list_users,
    roles_of,
    set_roles,
    user_by_token_hash,
)
from jobctl.scheduler.store.common import INSERT_EVENT, fenced, new_id, utcnow  # noqa: F401
from jobctl.scheduler.store.dispatch import (  # noqa: F401
    DISPATCH_LOCK_KEY,
    job_target,
    lock_dispatch,
    pending_candidates,
    project_loads,
    project_loads_and_heads,
)
from jobctl.scheduler.store.jobs import (  # noqa: F401
    SORTS,
    JobQuery,
    count_jobs_by_project_status,
    get_job,
    job_events,
    jobs_of_target,
    list_jobs,
    load_jobs,
    matching_job_ids,
    project_of_job,
    projects_of_jobs,
    purge_final_jobs,
    step_log,
    targeted_jobs,
)
from jobctl.scheduler.store.leases import (  # noqa: F401
    ExpiredLease,
    StepStart,
    append_log,
    expired_leases,
    heartbeat,
    is_current,
    lock_attempt,
    save_checkpoint,
)
from jobctl.scheduler.store.submission import STEPS_PER_INSERT, NewJob, insert_job, insert_jobs  # noqa: F401
from jobctl.scheduler.store.targets import delete_target, list_targets, put_record_target  # noqa: F401
from jobctl.scheduler.store.transitions import (  # noqa: F401
    Transition,
    account_time,
    lock_jobs,
    release_restart_hold,
    resend_attempt,
    transition,
)
