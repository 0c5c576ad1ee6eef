"""`azs3copy plan`: what a run of the current settings would copy, how long it would take at the deployed
concurrency and what it would cost, from a listing of the source (or a sample of it), without copying.

The listing selects as find-blobs does (the secret's containers, prefix, include/exclude, begindate); the
deployment (each function's reserved concurrency, memory, timeout, event age, and the tuning in its
environment) is read from Lambda; the prediction is azs3copy.scale's, with its calibration and price table."""

from __future__ import annotations

import argparse
import json
import math
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from azs3copy.cli.status import duration as finite_duration
from azs3copy.cli.status import size_text
from azs3copy.cli.target import CliError, Target, azure_source, error_code, read_secret
from azs3copy.functions import PIPELINE
from azs3copy.handler.environment import RuntimeConfig
from azs3copy.scale.inputs import QUEUE_RETENTION_S, Deployment, load_calibration
from azs3copy.scale.model import Prediction, predict
from azs3copy.scale.prices import Cost, PriceTable, datasync_usd, estimate_cost, load_prices
from azs3copy.scale.workload import SizeHistogram, Workload, WorkloadCounter
from azs3copy.settings import Settings, parse_settings
from azs3copy.steps.context import Tuning
from azs3copy.transports import BlobSource


@dataclass
class ContainerListing:
    name: str
    counter: WorkloadCounter
    histogram: SizeHistogram = field(default_factory=SizeHistogram)
    listed: int = 0
    selected: int = 0
    archived: int = 0
    sampled: bool = False  # the listing stopped at --sample before the container's end


@dataclass
class Listing:
    containers: list[ContainerListing]
    seconds: float
    page_size: int
    scale_factor: float = 1.0  # applied to the sampled containers
    scaled_to: int | None = None

    @property
    def sampled(self) -> bool:
        return any(container.sampled for container in self.containers)

    def workload(self) -> Workload:
        total = Workload()
        for container in self.containers:
            work = container.counter.workload()
            grown = work.scaled(self.scale_factor, self.page_size) if container.sampled else work
            total = total + grown
        return total

    def histogram(self) -> SizeHistogram:
        merged = SizeHistogram()
        for container in self.containers:
            merged.merge(container.histogram, self.scale_factor if container.sampled else 1.0)
        return merged


Progress = Callable[[ContainerListing], None]


def list_selection(
    source: BlobSource,
    settings: Settings,
    tuning: Tuning,
    containers: list[str],
    *,
    sample: int | None = None,
    progress: Progress | None = None,
) -> Listing:
    """List what the settings select, page by page as find-blobs would (at most `sample` selected blobs a
    container), counting the run's work."""
    from azs3copy.steps.find_blobs import selected

    chosen = settings.run_settings()  # what a run started now would record and select with

    started = time.monotonic()
    found = []
    for name in containers:
        listing = ContainerListing(name, WorkloadCounter(tuning))
        found.append(listing)
        marker: str | None = None
        while True:
            page = source.list_page(name, chosen.prefix, marker, tuning.page_size)
            sizes: list[int] = []
            walked = archived = 0
            for blob in page.blobs:
                if sample is not None and listing.selected >= sample:
                    listing.sampled = True
                    break
                walked += 1
                if not selected(chosen, blob):
                    continue
                listing.selected += 1
                listing.histogram.add(blob.ref.size)
                if blob.archived:
                    archived += 1
                else:
                    sizes.append(blob.ref.size)
            listing.listed += walked
            listing.archived += archived
            listing.counter.add_page(name, walked, sizes, archived)
            if progress:
                progress(listing)
            marker = page.marker
            if listing.sampled or marker is None:
                break
            if sample is not None and listing.selected >= sample:
                listing.sampled = True  # more pages follow: the container holds more than the sample
                break
    return Listing(found, time.monotonic() - started, tuning.page_size)


def scale_listing(listing: Listing, scale_to: int | None) -> Listing:
    """The sampled containers scaled up so that the selection holds `scale_to` blobs."""
    if scale_to is None or not listing.sampled:
        return listing
    whole = sum(c.selected for c in listing.containers if not c.sampled)
    sampled = sum(c.selected for c in listing.containers if c.sampled)
    if scale_to < whole + sampled:
        raise CliError(
            f"--scale-to {scale_to} is fewer than the {whole + sampled} blobs the sample already found"
        )
    return replace(listing, scale_factor=(scale_to - whole) / sampled, scaled_to=scale_to)


# --- the deployment -----------------------------------------------------------------------------------------


def _lambda_control(target: Target) -> Any:
    """Lambda's configuration API: the account's, or locally moto's (the runtime serves only Invoke)."""
    if target.local:
        return target.session.client("lambda", endpoint_url=target.endpoint)
    return target.client("lambda")


def read_deployment(target: Target) -> Deployment:
    """Each function's concurrency, memory and timeout, the event age and the tuning, as deployed."""
    control = _lambda_control(target)
    concurrency: dict[str, int] = {}
    memory: dict[str, int] = {}
    timeout: dict[str, float] = {}
    env: dict[str, str] = {}
    architecture, max_age = "arm64", 21600.0
    for function in PIPELINE:
        name = target.function(function)
        try:
            config = control.get_function_configuration(FunctionName=name)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise CliError(
                    f"no function {name}: is azs3copy deployed here? (--prefix, --region, --local)"
                ) from None
            raise
        memory[function] = int(config.get("MemorySize") or 128)
        timeout[function] = float(config.get("Timeout") or 3)
        architecture = (config.get("Architectures") or [architecture])[0]
        reserved = control.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        concurrency[function] = -1 if reserved is None else int(reserved)
        if function == "find-blobs":
            env = (config.get("Environment") or {}).get("Variables") or {}
            max_age = _event_age(control, name, max_age)
    account = 1000  # Lambda's default quota; locally there is none
    if not target.local:
        try:
            account = int(control.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
        except ClientError:  # not allowed (lambda:GetAccountSettings) or not served: the default quota
            pass
    deployment = Deployment(
        concurrency=concurrency,
        memory_mb=memory,
        timeout_s=timeout,
        architecture=architecture,
        max_event_age_s=max_age,
        account_concurrency=account,
        tuning=RuntimeConfig(env).tuning(),
    )
    return _with_local_workers(target, deployment) if target.local else deployment


def _event_age(control: Any, name: str, default: float) -> float:
    """How long find-blobs' work can wait: Lambda's event age for an asynchronously invoked step (a
    deployment from before the queues), else the retention of the queue it reads."""
    try:
        config = control.get_function_event_invoke_config(FunctionName=name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return QUEUE_RETENTION_S
        raise
    return float(config.get("MaximumEventAgeInSeconds") or default)


def _with_local_workers(target: Target, deployment: Deployment) -> Deployment:
    """Locally a function runs at most as many invocations at once as the runtime has workers for it."""
    assert target.local is not None
    try:
        with urllib.request.urlopen(str(target.local["runtime_url"]) + "/local/stats", timeout=5) as reply:
            stats = json.load(reply)
    except (OSError, ValueError):
        raise CliError(
            f"the local runtime does not answer at {target.local['runtime_url']}: start it with `make up`"
        ) from None
    workers = {
        row.get("component"): int(row.get("workers", 0)) for row in stats.get("functions", {}).values()
    }
    return replace(
        deployment,
        concurrency={f: workers.get(f, deployment.concurrency[f]) for f in PIPELINE},
    )


def money(usd: float) -> str:
    """Dollars to the cent, or to a hundredth of a cent under a dollar (a small plan costs that little)."""
    return f"${usd:>12,.2f}" if usd >= 1 or usd == 0 else f"${usd:>12.4f}"


def duration(seconds: float) -> str:
    return finite_duration(seconds) if math.isfinite(seconds) else "never"


# --- the command --------------------------------------------------------------------------------------------


def cmd_plan(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    if args.sample is not None and args.sample < 1:
        raise CliError("--sample must be at least 1")
    if args.scale_to is not None and args.sample is None:
        raise CliError("--scale-to scales a sample up: give --sample N too")
    prices = load_prices(Path(args.prices) if args.prices else None)
    settings = parse_settings(json.dumps(read_secret(target)))
    source = azure_source(settings.require_azure())
    deployment = read_deployment(target)
    containers = list(settings.containers) if settings.containers else source.list_containers()
    with _progress(out, enabled=not args.json) as progress:
        listing = list_selection(
            source, settings, deployment.tuning, containers, sample=args.sample, progress=progress
        )
    listing = scale_listing(listing, args.scale_to)
    work = listing.workload()
    on_aws = predict(work, deployment, load_calibration("lambda"))
    prediction = predict(work, deployment, load_calibration("local")) if target.local else on_aws
    cost = estimate_cost(on_aws.usage, prices, deployment.architecture)
    document = plan_document(
        target, settings, containers, listing, work, deployment, prediction, cost, prices, args
    )
    if args.json:
        print(json.dumps(document, indent=2), file=out)
    else:
        print_plan(document, out)
    return 0


class _progress:
    """Shows the listing as it goes: rich's live line on a terminal, else a line every 5 seconds."""

    def __init__(self, out: TextIO, *, enabled: bool) -> None:
        self.out, self.enabled = out, enabled
        self.interactive = enabled and getattr(out, "isatty", lambda: False)()
        self.last = 0.0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress | None:
        if not self.enabled:
            return None
        if self.interactive:
            try:
                from rich.console import Console
                from rich.progress import Progress as RichProgress
                from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
            except ImportError:  # the package without its [cli] extra: the plain lines
                self.interactive = False
            else:
                self._progress = RichProgress(
                    SpinnerColumn(),
                    TextColumn("[bold]listing[/bold] {task.description}"),
                    TimeElapsedColumn(),
                    console=Console(file=self.out),
                )
                self._progress.__enter__()
                self._task = self._progress.add_task("", total=None)
        return self.update

    def update(self, listing: ContainerListing) -> None:
        text = (
            f"{listing.name}: {listing.listed:,} listed, {listing.selected:,} selected "
            f"({size_text(sum(listing.histogram.bytes.values()))})"
        )
        if self._progress is not None:
            self._progress.update(self._task, description=text)
        elif time.monotonic() - self.last >= 5:
            print(f"  listing {text}", file=self.out, flush=True)
            self.last = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def _cost_lines(cost: Cost) -> list[dict[str, Any]]:
    return [{**asdict(line), "usd": round(line.usd, 6)} for line in cost.lines]


def plan_document(
    target: Target,
    settings: Settings,
    containers: list[str],
    listing: Listing,
    work: Workload,
    deployment: Deployment,
    prediction: Prediction,
    cost: Cost,
    prices: PriceTable,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Everything the plan says, as the JSON `--json` prints."""
    return {
        "where": "local" if target.local else "aws",
        "selection": {
            "containers": containers,
            "prefix": settings.prefix,
            "include": list(settings.include),
            "exclude": list(settings.exclude),
            "begindate": settings.begindate.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "listing": {
            "seconds": round(listing.seconds, 2),
            "sample_per_container": args.sample,
            "sampled_containers": [c.name for c in listing.containers if c.sampled],
            "scaled_to": listing.scaled_to,
            "scale_factor": round(listing.scale_factor, 4),
            "containers": [
                {
                    "name": c.name,
                    "listed": c.listed,
                    "selected": c.selected,
                    "archived": c.archived,
                    "sampled": c.sampled,
                }
                for c in listing.containers
            ],
        },
        "blobs": work.blobs,
        "bytes": work.bytes,
        "histogram": listing.histogram().rows(),
        "work": asdict(work),
        "deployment": {
            "concurrency": dict(deployment.concurrency),
            "memory_mb": dict(deployment.memory_mb),
            "timeout_s": dict(deployment.timeout_s),
            "architecture": deployment.architecture,
            "max_event_age_s": deployment.max_event_age_s,
            "account_concurrency": deployment.account_concurrency,
            "tuning": {
                "large_threshold": deployment.tuning.large_threshold,
                "part_size": deployment.tuning.part_size,
                "chunk_size": deployment.tuning.chunk_size,
                "page_size": deployment.tuning.page_size,
            },
        },
        "prediction": {
            "calibration": prediction.calibration,
            "seconds": round(prediction.seconds, 1),
            "binding": prediction.binding,
            "bounds_seconds": {
                name: round(seconds, 1)
                for name, seconds in sorted(prediction.bounds.items(), key=lambda item: -item[1])
            },
            "listing_seconds": round(prediction.listing_seconds, 1),
            "report_seconds": round(prediction.report_seconds, 1),
            "functions": {
                name: {
                    "invocations": load.invocations,
                    "seconds_each": round(load.seconds_each, 3),
                    "concurrency": load.slots,
                    "memory_mb": load.memory_mb,
                    "gb_seconds": round(load.gb_seconds, 1),
                }
                for name, load in prediction.functions.items()
            },
            "hottest_item_writes_per_1000_blobs": round(prediction.hottest_item_writes_per_1000_blobs, 1),
            "expired_share": dict(prediction.expired_share),
            "warnings": list(prediction.warnings),
        },
        "cost": {
            "on": "AWS"
            if not target.local
            else "AWS, for the same deployment (the local environment is free)",
            "lines": _cost_lines(cost),
            "aws_usd": round(cost.aws_usd, 4),
            "azure_usd": round(cost.azure_usd, 4),
            "datasync_usd": round(datasync_usd(work.bytes, prices), 4),
            "prices": dict(prices.values),
        },
    }


def print_plan(doc: dict[str, Any], out: TextIO) -> None:
    sel, listing, pred, cost = doc["selection"], doc["listing"], doc["prediction"], doc["cost"]
    filters = ", ".join(
        part
        for part in (
            f"prefix {sel['prefix']!r}" if sel["prefix"] else "",
            f"include {' '.join(sel['include'])}" if sel["include"] else "",
            f"exclude {' '.join(sel['exclude'])}" if sel["exclude"] else "",
            f"modified at or after {sel['begindate']}",
        )
        if part
    )
    print(f"plan: {len(sel['containers'])} container(s): {', '.join(sel['containers'])}; {filters}", file=out)
    listed = sum(c["listed"] for c in listing["containers"])
    archived = sum(c["archived"] for c in listing["containers"])
    print(
        f"  listed    {listed:,} blob(s) in {duration(listing['seconds'])}; the run would copy "
        f"{doc['blobs'] - doc['work']['not_copied']:,} blob(s), {size_text(doc['bytes'])}"
        + (f" ({archived:,} archived: recorded, not copied)" if archived else ""),
        file=out,
    )
    if listing["sampled_containers"]:
        sampled = ", ".join(listing["sampled_containers"])
        if listing["scaled_to"]:
            print(
                f"  SAMPLE    the first {listing['sample_per_container']:,} selected blob(s) of {sampled}, "
                f"scaled ×{listing['scale_factor']:.2f} to {listing['scaled_to']:,} blobs (--scale-to): "
                "every count below is an estimate",
                file=out,
            )
        else:
            print(
                f"  SAMPLE    only the first {listing['sample_per_container']:,} selected blob(s) of {sampled}: "
                "the selection holds more, and the figures below are for the sample alone "
                "(--scale-to BLOBS scales them up)",
                file=out,
            )
    print("  sizes", file=out)
    total = sum(row["bytes"] for row in doc["histogram"])
    for row in doc["histogram"]:
        share = row["bytes"] / total if total else 0.0
        print(
            f"    {row['bin']:>20}  {row['blobs']:>12,} blobs  {size_text(row['bytes']):>10}  {share:6.1%}",
            file=out,
        )
    work = doc["work"]
    print(
        f"  work      {work['batches']:,} download batch(es) of {work['small_blobs']:,} blob(s); "
        f"{work['large_blobs']:,} large blob(s) in {work['parts']:,} part(s); {work['pages']:,} listing page(s)",
        file=out,
    )
    functions = ", ".join(
        f"{name} {row['concurrency']} × {row['memory_mb']} MB" for name, row in pred["functions"].items()
    )
    print(f"  deployed  {functions} (concurrency × memory)", file=out)
    where = "in the local environment" if doc["where"] == "local" else "on Lambda"
    print(f"  duration  {duration(pred['seconds'])} {where}, set by {pred['binding']}", file=out)
    for name, seconds in list(pred["bounds_seconds"].items())[:6]:
        print(f"    {duration(seconds):>10}  {name}", file=out)
    print(f"    (the scale model's {pred['calibration']})", file=out)
    for warning in pred["warnings"]:
        print(f"  WARNING   {warning}", file=out)
    prices = cost["prices"]
    print(
        f"  cost      on {cost['on']}: list prices of {prices['as_of']}, {prices['region']} "
        "(--prices FILE overrides them)",
        file=out,
    )
    for line in cost["lines"]:
        mark = " (estimate)" if line["estimate"] else ""
        print(f"    {line['service']:<18} {money(line['usd'])}  {line['quantity']}{mark}", file=out)
    print(f"    {'AWS in all':<18} {money(cost['aws_usd'])}  (without Azure's charges)", file=out)
    print(f"    {'Azure in all':<18} {money(cost['azure_usd'])}  (egress and reads: estimates)", file=out)
    print(
        f"    {'DataSync instead':<18} {money(cost['datasync_usd'])}  (its per-GB fee and one task)", file=out
    )
    print("  prices used:", file=out)
    for key, value in prices.items():
        if key not in ("as_of", "region", "sources"):
            print(f"    {key} = {value}", file=out)
    if not math.isfinite(pred["seconds"]):
        print("  the run would never finish (a function with concurrency 0 has work)", file=out)
