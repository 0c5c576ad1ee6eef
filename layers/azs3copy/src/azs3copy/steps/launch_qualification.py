"""launch-qualification: when the secret says so, start a run in the ledger and announce its containers."""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools import Logger

from azs3copy.errors import ConfigError
from azs3copy.ledger import RunInProgressError
from azs3copy.messages import (
    FindBlobsTask,
    encode,
    iso,
)
from azs3copy.settings import UNREADABLE_CLASSES
from azs3copy.steps.context import Deps, Invocation, Outcome, new_run_id

logger = Logger(child=True)


def launch_qualification(
    deps: Deps, *, force: bool = False, now: datetime | None = None, invocation: Invocation | None = None
) -> Outcome:
    """Start a run when the secret says so: one listing message per container.

    A retry of the invocation that started a run (same request id) publishes that run's containers again (a
    listing delivered twice changes nothing), so a launch that died between starting its run and announcing
    it still gets the run going. While another run is unfinished no run starts, and the answer says why."""
    settings = deps.need_settings()
    invocation = invocation or Invocation()
    outcome = Outcome()
    if not settings.isactive:
        outcome.detail = {"started": False, "reason": "isactive is false in the secret"}
        logger.info("run not started: isactive is false")
        return outcome
    settings.require_azure()
    chosen = settings.run_settings(deps.tuning.storage_class)
    unreadable = sorted(chosen.storage_classes() & UNREADABLE_CLASSES)
    if unreadable and deps.tuning.verify == "readback":
        raise ConfigError(
            f"secret key 'storage_class' (or 'tier_storage_classes') names {', '.join(unreadable)}, whose objects "
            "S3 serves only after a restore, so verify=readback could never read a copy back: choose another "
            "class, or verify=checksum"
        )
    listed = list(settings.containers) if settings.containers else deps.need_source().list_containers()
    containers = list(dict.fromkeys(listed))  # a container named twice is listed once
    if len(containers) < len(listed):
        logger.warning("containers named more than once are listed once", extra={"containers": containers})
    if not containers:
        outcome.detail = {"started": False, "reason": "the storage account has no containers"}
        return outcome
    fresh = new_run_id(now)
    try:
        run_id = deps.ledger.start_run(
            fresh,
            containers=containers,
            begindate=iso(settings.begindate),
            force=force,
            stale_after=deps.tuning.stale_run_seconds,
            launch_id=invocation.request_id,
            settings=chosen,
        )
    except RunInProgressError as error:
        reason = (
            f"run {error.run_id} has not finished (wait for it, or start one anyway with force; a run that "
            f"makes no progress for {deps.tuning.stale_run_seconds / 3600:g} h is taken over by the next launch)"
        )
        outcome.detail = {"started": False, "reason": reason, "run_in_progress": error.run_id}
        logger.warning("run not started: another run is in progress", extra={"run_id": error.run_id})
        return outcome
    resumed = run_id != fresh
    if resumed:  # an earlier attempt of this launch started the run: announce the containers it recorded
        run = deps.ledger.get_run(run_id)
        containers = list(run.containers) if run is not None else containers
    bodies = [encode(FindBlobsTask(run_id, container)) for container in containers]
    deps.publisher.publish(deps.topics.find_blobs, bodies)
    outcome.published = len(bodies)
    outcome.detail = {"started": True, "run_id": run_id, "containers": containers}
    if resumed:
        outcome.detail["announced_again"] = True
    logger.info(
        "run started", extra={"run_id": run_id, "containers": len(containers), "announced_again": resumed}
    )
    return outcome
