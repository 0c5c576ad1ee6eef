"""Secret hygiene: after every scenario has run with a recognisable Azure account key (and a wrong one), and one
with a SAS token, neither key nor the token's signature appears in any SNS message, dead-letter payload,
function log line, the local runtime's own log, run report, ledger item, or the Terraform state of the
deployment (refreshed, as any later `terraform apply` would refresh it).

This module runs after the scenarios (pytest runs tests/faults/ files in name order)."""

from __future__ import annotations

import json
from typing import Any

from tests.faults.conftest import CANARY, REPORT_PREFIX, SAS_SIGNATURES, WRONG_KEY, World


def every_sns_message(world: World) -> list[str]:
    sqs, bodies = world.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=world.hygiene_queue, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=world.hygiene_queue, ReceiptHandle=message["ReceiptHandle"])


def every_report(world: World) -> list[str]:
    s3 = world.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=world.bucket, Prefix=REPORT_PREFIX)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return [s3.get_object(Bucket=world.bucket, Key=key)["Body"].read().decode() for key in keys]


def every_ledger_item(world: World) -> list[str]:
    pages = world.client("dynamodb").get_paginator("scan").paginate(TableName=world.outputs["ledger_table"])
    # Binary attributes (a listing page's set of blob digests) as latin-1 text: every byte a character, so a
    # secret stored in one would still be found.
    return [
        json.dumps(item, default=lambda value: bytes(value).decode("latin-1"))
        for page in pages
        for item in page.get("Items", [])
    ]


def test_the_azure_secret_appears_nowhere(world: World) -> None:
    world.drain_dead_letters()
    world.terraform.run(
        "apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color", *world.terraform.vars()
    )
    places: dict[str, list[str]] = {
        "SNS message": every_sns_message(world),
        "dead-letter payload": [json.dumps(record) for record in world.dead_letters],
        "function log": [path.read_text(errors="replace") for path in sorted(world.log_dir.glob("*.log"))],
        "run report": every_report(world),
        "ledger item": every_ledger_item(world),
        "Terraform state": [world.terraform.state.read_text()],
    }
    assert (
        len(places["SNS message"]) > 50 and len(places["run report"]) > 10 and places["dead-letter payload"]
    )
    assert sum(text.count('"level"') for text in places["function log"]) > 100
    assert SAS_SIGNATURES, "a scenario ran with a SAS token"
    runtime_log = (world.log_dir / "local-runtime.log").read_text(errors="replace")
    # Failed steps reach their dead-letter queues by SQS's redrive now (above); the runtime logs the queues it reads.
    assert "partial batch failures" in runtime_log, "the runtime's record of the queues it serves"
    leaks: list[Any] = [
        (where, secret_name, text[max(0, text.find(value) - 200) : text.find(value) + 60])
        for where, texts in places.items()
        for text in texts
        for secret_name, value in (
            ("account key", CANARY),
            ("wrong account key", WRONG_KEY),
            *(("SAS signature", signature) for signature in SAS_SIGNATURES),
        )
        if value in text
    ]
    assert not leaks, leaks
