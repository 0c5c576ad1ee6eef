"""Least privilege: each function's IAM policy, read from the Terraform plan of terraform/envs/local, names
exactly the actions its code uses, on exactly the resources it uses.

The plan's planned values are read (what apply would leave, not the prior state), and each function role
may hold exactly one inline policy: any other inline policy, managed policy or attachment to the role fails
the test, wherever in the configuration it is declared. The checker's own tests feed it plan fragments.

What each function's code calls, derived by reading the engine, the ledger and the transports:

* every step: (through Lambda's event source mapping) ReceiveMessage, DeleteMessage, GetQueueAttributes on its
  own SQS queue, and ChangeMessageVisibility there (the handler delays a failed record's next attempt).
* every function: (through Lambda) its log group (Lambda writes its logs with the role), its own dead-letter queue (the
  on-failure destination sends with the role), X-Ray segments when tracing is active, the KMS key (encrypted DLQs, topics, secret and objects);
  metrics are EMF lines in the log (Powertools), not PutMetricData calls.
* the ledger: `bump_attempt`, `claim`, `release`, `finish`, `set_upload`, `mark_reported` are UpdateItem (or
  TransactWriteItems of updates); `finish` of a blob not copied also puts its failure item (PutItem);
  `record_part`, `start_run` and the page/listing records are PutItem (`start_run` checks the record and the
  counter shards of the run it may take over with ConditionChecks, ConditionCheckItem); `register_page`
  writes blobs with TransactWriteItems of conditional Puts (PutItem) and a counter shard (UpdateItem); a
  listing page retried after it was registered reads its blobs back with BatchGetItem (`page_blobs`,
  find-blobs); `get_run` (the counter shards), the report's `failures()` and `part_checksums` are Query;
  the report claim is a conditional PutItem, let go with DeleteItem.
* S3 on a versioned bucket: read-back of the version just written is GetObjectVersion, removing an
  unverified version is DeleteObjectVersion; HEAD is GetObject; CreateMultipartUpload, UploadPart,
  CompleteMultipartUpload and the run report are PutObject; `_upload_call` checks a failing upload with
  ListParts (ListMultipartUploadParts). Any function that can end a run's last blob writes the report.
  With verify=checksum an object is written with its verified mark in its metadata, and with the blob's
  index tags (PutObject and CreateMultipartUpload with Tagging, which S3 authorizes as s3:PutObjectTagging
  too), by download and the initializer; with verify=readback (and for a large blob with a Content-MD5) a
  verified object's version is marked with a tag afterwards (PutObjectVersionTagging, PutObjectTagging
  without a version id) by download and the recombinator; find-blobs and the recombinator look for the mark
  to skip verified copies (HEAD, then the current version's tags: GetObjectTagging), and so does download
  when a chunked blob's completion answer was lost and its resend found the upload gone (found by the
  recorded calls below, not by reading). The recombinator continues a long read-back by publishing to
  its own topic. A PutObject the SDK resent (RetryAttempts > 0) lists the key's versions
  (ListBucketVersions) to remove the one its unanswered first attempt stored.
* blob-events reads the whole secret at every delivery, the current properties of each blob an event names
  (Azure, no AWS grant), the verified mark of its object (HEAD, and GetObjectTagging, with s3:ListBucket to
  tell a missing object apart), opens the day's events run (a transaction of Puts) and registers its blobs as
  find-blobs does, publishes to download and largefile-initializer, and closing the day before's run may
  write its report.
* one grant no call names: S3 evaluates s3:ListBucket on the bucket when a HEAD, GET or GetObjectTagging
  names a key that is not there, and answers 404 with it, 403 without. download and the recombinator read
  keys that may be gone (a verified copy looked for, an object deleted under a read-back), so they hold it
  to tell a missing object from a refused one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults.conftest import REGION, World

Grant = tuple[str, str]

SECRET, OBJECTS, REPORTS, BUCKET, LEDGER, KEY, OWN_LOGS, OWN_DLQ, OWN_QUEUE = (
    "secret",
    "objects",
    "reports",
    "bucket",
    "ledger",
    "key",
    "own log group",
    "own dlq",
    "own queue",
)


def grants(actions: list[str], resource: str) -> set[Grant]:
    return {(action, resource) for action in actions}


#: Lambda's own use of the role: logs, the on-failure destination, X-Ray segments when tracing is active.
COMMON = (
    grants(["logs:CreateLogStream", "logs:PutLogEvents"], OWN_LOGS)
    | grants(["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "*")
    | grants(["sqs:SendMessage"], OWN_DLQ)
    | grants(["kms:Decrypt", "kms:GenerateDataKey"], KEY)
)
#: The run's counters (META and its counter shards: GetItem, Query), the report claim (PutItem, DeleteItem when
#: the report could not be written), the failures it lists (Query), the report object and the run marked.
REPORTING = grants(
    ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    LEDGER,
) | grants(["s3:PutObject"], REPORTS)
#: A step fed by its SQS queue: Lambda's event source mapping receives and deletes with the role, and the
#: handler shortens a failed record's visibility to its retry delay.
CONSUME_QUEUE = grants(
    ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
    OWN_QUEUE,
)
#: claims, finish (with a blob's failure item: PutItem), the report, the queue.
STEP = grants(["dynamodb:PutItem", "dynamodb:UpdateItem"], LEDGER) | REPORTING | CONSUME_QUEUE
READ_SECRET = grants(["secretsmanager:GetSecretValue"], SECRET)
#: Not an API call: what makes S3 answer a read of a missing key with 404 instead of 403 (see above).
TELL_MISSING = grants(["s3:ListBucket"], BUCKET)
WRITE_AND_VERIFY = grants(
    [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    ],
    OBJECTS,
)

USES: dict[str, set[Grant]] = {
    "launch-qualification": READ_SECRET
    | grants(
        ["dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"], LEDGER
    )
    | grants(["sns:Publish"], "topic find-blobs"),
    "find-blobs": READ_SECRET
    | STEP
    | grants(["dynamodb:BatchGetItem", "dynamodb:PutItem"], LEDGER)
    | grants(["s3:ListBucket"], BUCKET)
    | grants(["s3:GetObject", "s3:GetObjectTagging"], OBJECTS)
    | grants(["sns:Publish"], "topic find-blobs")
    | grants(["sns:Publish"], "topic download")
    | grants(["sns:Publish"], "topic largefile-initializer"),
    "download": READ_SECRET
    | STEP
    | WRITE_AND_VERIFY
    | TELL_MISSING
    | grants(["s3:ListBucketVersions"], BUCKET)
    | grants(["s3:GetObjectTagging"], OBJECTS),
    "largefile-initializer": STEP
    | grants(["s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectTagging"], OBJECTS)
    | grants(["sns:Publish"], "topic largefile-parter"),
    "largefile-parter": READ_SECRET
    | STEP
    | grants(["dynamodb:PutItem"], LEDGER)
    | grants(["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"], OBJECTS)
    | grants(["sns:Publish"], "topic largefile-recombinator"),
    "largefile-recombinator": STEP
    | WRITE_AND_VERIFY
    | TELL_MISSING
    | grants(["s3:GetObjectTagging"], OBJECTS)
    | grants(["sns:Publish"], "topic largefile-recombinator"),
    # The next day's first delivery closes the day before's events run and writes its report (REPORTING).
    "blob-events": READ_SECRET
    | REPORTING
    | TELL_MISSING
    | grants(["dynamodb:BatchGetItem", "dynamodb:PutItem"], LEDGER)
    | grants(["s3:GetObject", "s3:GetObjectTagging"], OBJECTS)
    | grants(["sns:Publish"], "topic download")
    | grants(["sns:Publish"], "topic largefile-initializer"),
}


#: The IAM action each S3 operation needs (on a version: the Version form).
S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "DeleteObject": "s3:DeleteObject",
}
VERSIONED = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
}
TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def iam_actions(call: dict[str, Any]) -> set[str]:
    """The IAM actions one recorded AWS call needs."""
    service, operation = call["service"], call["operation"]
    if service == "s3" and operation in S3_ACTIONS:
        action = S3_ACTIONS[operation]
        needed = {VERSIONED.get(action, action) if call["version"] else action}
        if call.get("tagging"):  # PutObject or CreateMultipartUpload with Tagging
            needed.add("s3:PutObjectTagging")
        return needed
    if service == "dynamodb" and operation == "TransactWriteItems":
        return {TRANSACT_ACTIONS.get(kind, f"dynamodb:{kind}") for kind in call["transact"]}
    if service == "sns" and operation == "PublishBatch":
        return {"sns:Publish"}
    return {f"{service}:{operation}"}


def test_every_aws_call_the_functions_made_in_the_scenarios_is_one_their_policy_grants(world: World) -> None:
    """What the code uses, observed: every AWS call the workers made while the scenarios ran (the worker
    records them) needs only actions in USES for its function, and USES is what the plan grants (above). An
    API call added to the code without its grant fails here, although moto enforces no IAM."""
    names = {name: directory for directory, name in world.outputs["function_names"].items()}
    calls = [
        json.loads(line)
        for line in (world.log_dir / "aws-calls.jsonl").read_text().splitlines()
        if line.strip()
    ]
    used: dict[str, set[str]] = {}
    for call in calls:
        if call["function"] in names:
            used.setdefault(names[call["function"]], set()).update(iam_actions(call))
    # No scenario delivers Event Grid events yet: blob-events' grants are checked against the plan (below) and
    # its calls by the integration tests of the function URL, not observed here.
    assert sorted(used) == sorted(set(USES) - {"blob-events"}), f"calls recorded for {sorted(used)}"
    granted = {directory: {action for action, _ in USES[directory] | COMMON} for directory in USES}
    beyond = {directory: sorted(actions - granted[directory]) for directory, actions in used.items()}
    assert not any(beyond.values()), f"AWS calls the policies do not grant: {beyond}"
    assert len(calls) > 1000 and "s3:PutObject" in used["download"] and "sns:Publish" in used["find-blobs"]


def plan_json(world: World) -> dict[str, Any]:
    plan = world.terraform.work / "least-privilege.tfplan"
    world.terraform.run(
        "plan", "-input=false", "-no-color", "-lock=false", f"-out={plan}", *world.terraform.vars()
    )
    document: dict[str, Any] = json.loads(world.terraform.run("show", "-json", "-no-color", str(plan)))
    return document


def planned_resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource as the plan leaves it (planned_values: what apply would make, not the prior state)."""
    found: list[dict[str, Any]] = []
    modules = [plan["planned_values"]["root_module"]]
    while modules:
        module = modules.pop()
        modules.extend(module.get("child_modules", []))
        found.extend(module.get("resources", []))
    return found


def _directory(address: str) -> str | None:
    if 'module.function["' not in address:
        return None
    return address.split('module.function["')[1].split('"]')[0]


def _policy(text: Any) -> dict[str, Any] | None:
    return json.loads(text) if isinstance(text, str) and text else None


def function_policies(plan: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:  # noqa: C901 (one branch per IAM statement shape the module writes)
    """Each function role's one inline policy document by directory name, and every other grant found on
    those roles: more inline policies (resources or the role's inline_policy), managed policies
    (managed_policy_arns, aws_iam_role_policy_attachment, aws_iam_policy_attachment, ...), or attachments
    whose role the plan cannot name yet."""
    resources = planned_resources(plan)
    roles: dict[str, str] = {}  # role name -> directory
    for resource in resources:
        directory = _directory(resource["address"])
        if resource["type"] == "aws_iam_role" and directory is not None:
            roles[resource["values"]["name"]] = directory

    inline: dict[str, dict[str, dict[str, Any] | None]] = {d: {} for d in roles.values()}
    problems: list[str] = []
    for resource in resources:
        kind, address, values = resource["type"], resource["address"], resource.get("values", {})
        if kind == "aws_iam_role" and values.get("name") in roles:
            directory = roles[values["name"]]
            for arn in values.get("managed_policy_arns") or []:
                problems.append(f"{directory}: role has the managed policy {arn} (managed_policy_arns)")
            for block in values.get("inline_policy") or []:
                if block.get("name") or block.get("policy"):
                    inline[directory].setdefault(block.get("name") or address, _policy(block.get("policy")))
        elif kind == "aws_iam_role_policy":
            role = values.get("role")
            if role is None:
                problems.append(f"{address}: an inline policy whose role is unknown at plan time")
            elif role in roles:
                name = values.get("name") or address
                document = _policy(values.get("policy"))
                if name in inline[roles[role]] and inline[roles[role]][name] not in (None, document):
                    problems.append(f"{roles[role]}: two different documents named {name}")
                inline[roles[role]][name] = document
        elif kind in ("aws_iam_role_policy_attachment", "aws_iam_role_policy_attachments_exclusive"):
            role = values.get("role") if kind.endswith("attachment") else values.get("role_name")
            arns = [values.get("policy_arn")] if kind.endswith("attachment") else values.get("policy_arns")
            if role is None:
                problems.append(f"{address}: attaches a managed policy to a role unknown at plan time")
            elif role in roles and arns != []:
                problems.append(f"{roles[role]}: {address} attaches {arns}")
        elif kind == "aws_iam_policy_attachment":
            attached = values.get("roles")
            if attached is None:
                problems.append(
                    f"{address}: attaches {values.get('policy_arn')} to roles unknown at plan time"
                )
            for role in set(attached or []) & set(roles):
                problems.append(f"{roles[role]}: {address} attaches {values.get('policy_arn')}")

    policies: dict[str, dict[str, Any]] = {}
    for directory, documents in sorted(inline.items()):
        if len(documents) != 1:
            problems.append(
                f"{directory}: role has {len(documents)} inline policies {sorted(documents)}, not one"
            )
            continue
        ((name, document),) = documents.items()
        if document is None:
            problems.append(f"{directory}: the document of inline policy {name} is unknown at plan time")
            continue
        policies[directory] = document
    return policies, problems


def resource_names(world: World, directory: str) -> dict[str, str]:
    """ARN → the symbolic name USES speaks of, for one function."""
    bucket = f"arn:aws:s3:::{world.bucket}"
    ledger = world.client("dynamodb").describe_table(TableName=world.outputs["ledger_table"])["Table"][
        "TableArn"
    ]
    function = world.name(directory)
    dlq = world.client("sqs").get_queue_attributes(
        QueueUrl=world.outputs["dlq_urls"][directory], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    names = {
        world.outputs["secret_id"]: SECRET,
        bucket: BUCKET,
        f"{bucket}/*": OBJECTS,
        f"{bucket}/_azs3copy/reports/*": REPORTS,
        ledger: LEDGER,
        world.outputs["kms_key_arn"]: KEY,
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{function}:*": OWN_LOGS,
        dlq: OWN_DLQ,
    }
    names.update({arn: f"topic {hop}" for hop, arn in world.outputs["topic_arns"].items()})
    queue = world.outputs["queue_urls"].get(directory)
    if queue is not None:
        names[
            world.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        ] = OWN_QUEUE
    return names


def granted(document: dict[str, Any], names: dict[str, str]) -> tuple[set[Grant], list[str]]:
    """(action, named resource) pairs the document allows, and what no such pair can express."""
    found: set[Grant] = set()
    problems = []
    for statement in document["Statement"]:
        sid = statement.get("Sid", "?")
        if statement.get("Effect", "Allow") != "Allow":
            continue  # a Deny grants nothing
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"statement {sid} allows by exclusion (NotAction/NotResource)")
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        found |= {(action, names.get(resource, resource)) for action in actions for resource in resources}
    return found, problems


def grant_problems(directory: str, document: dict[str, Any], names: dict[str, str]) -> list[str]:
    """What the document grants beyond what the function's code uses, and what it lacks."""
    have, problems = granted(document, names)
    need = USES[directory] | COMMON
    if ("s3:PutObject", OBJECTS) in have:
        have.add(("s3:PutObject", REPORTS))  # every object includes the reports
    extra, missing = sorted(have - need), sorted(need - have)
    found = [f"{directory}: {problem}" for problem in problems]
    if extra:
        found.append(f"{directory} is granted what its code never uses: {extra}")
    if missing:
        found.append(f"{directory} lacks what its code calls: {missing}")
    return found


def test_each_function_policy_names_only_what_its_code_uses(world: World) -> None:
    policies, problems = function_policies(plan_json(world))
    assert sorted(policies) == sorted(USES), problems
    for directory, document in sorted(policies.items()):
        problems += grant_problems(directory, document, resource_names(world, directory))
    assert not problems, "\n".join(problems)


# --- the checker itself, on plan fragments: it must fail on what it is there to catch ----------------------

ROLE = "azs3copy-download"
DOWNLOAD_NAMES = {
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:azs3copy": SECRET,
    "arn:aws:s3:::bucket/*": OBJECTS,
    "arn:aws:s3:::bucket/_azs3copy/reports/*": REPORTS,
    "arn:aws:dynamodb:us-east-1:123456789012:table/azs3copy-ledger": LEDGER,
    "arn:aws:kms:us-east-1:123456789012:key/k": KEY,
    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/azs3copy-download:*": OWN_LOGS,
    "arn:aws:sqs:us-east-1:123456789012:azs3copy-download-dlq": OWN_DLQ,
}


def download_document() -> dict[str, Any]:
    """A policy granting exactly what download uses, one statement per resource."""
    arns = {name: arn for arn, name in DOWNLOAD_NAMES.items()}
    by_resource: dict[str, list[str]] = {}
    for action, resource in sorted(USES["download"] | COMMON):
        by_resource.setdefault(resource, []).append(action)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": arns.get(resource, resource)}
            for resource, actions in sorted(by_resource.items())
        ],
    }


def fragment(*extra: dict[str, Any], role: dict[str, Any] | None = None) -> dict[str, Any]:
    """A plan with download's role and its one inline policy, plus `extra` resources anywhere."""
    prefix = 'module.azs3copy.module.function["download"]'
    return {
        "planned_values": {
            "root_module": {
                "child_modules": [
                    {
                        "address": "module.azs3copy",
                        "resources": list(extra),
                        "child_modules": [
                            {
                                "address": prefix,
                                "resources": [
                                    {
                                        "address": f"{prefix}.aws_iam_role.this",
                                        "type": "aws_iam_role",
                                        "values": {"name": ROLE, **(role or {})},
                                    },
                                    {
                                        "address": f"{prefix}.aws_iam_role_policy.this",
                                        "type": "aws_iam_role_policy",
                                        "values": {
                                            "name": ROLE,
                                            "role": ROLE,
                                            "policy": json.dumps(download_document()),
                                        },
                                    },
                                ],
                            }
                        ],
                    }
                ]
            }
        }
    }


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def test_checker_accepts_the_one_exact_inline_policy() -> None:
    policies, problems = function_policies(fragment(role={"inline_policy": [], "managed_policy_arns": []}))
    assert problems == []
    assert grant_problems("download", policies["download"], DOWNLOAD_NAMES) == []


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (
            fragment(
                {
                    "address": "module.azs3copy.aws_iam_role_policy_attachment.admin",
                    "type": "aws_iam_role_policy_attachment",
                    "values": {"role": ROLE, "policy_arn": ADMIN},
                }
            ),
            "AdministratorAccess",
        ),
        (
            fragment(
                {
                    "address": "aws_iam_policy_attachment.everyone",
                    "type": "aws_iam_policy_attachment",
                    "values": {"name": "x", "roles": ["other", ROLE], "policy_arn": ADMIN},
                }
            ),
            "AdministratorAccess",
        ),
        (fragment(role={"managed_policy_arns": [ADMIN]}), "managed_policy_arns"),
        (
            fragment(role={"inline_policy": [{"name": "extra", "policy": '{"Statement": []}'}]}),
            "2 inline policies",
        ),
        (
            fragment(
                {
                    "address": "module.azs3copy.aws_iam_role_policy.more",
                    "type": "aws_iam_role_policy",
                    "values": {"name": "more", "role": ROLE, "policy": '{"Statement": []}'},
                }
            ),
            "2 inline policies",
        ),
        (
            fragment(
                {
                    "address": "module.azs3copy.aws_iam_role_policy_attachment.later",
                    "type": "aws_iam_role_policy_attachment",
                    "values": {"policy_arn": ADMIN},
                }
            ),
            "unknown at plan time",
        ),
    ],
    ids=[
        "role-policy-attachment",
        "policy-attachment",
        "managed-policy-arns",
        "inline-policy-block",
        "second-role-policy",
        "attachment-to-unknown-role",
    ],
)
def test_checker_fails_on_anything_else_attached_to_a_function_role(
    plan: dict[str, Any], expected: str
) -> None:
    _, problems = function_policies(plan)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/*"}, "('s3:*', 'objects')"),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}, "('sqs:SendMessage', '*')"),
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "('*', '*')"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "NotAction"),
    ],
    ids=["wildcard-action", "wildcard-resource", "everything", "not-action"],
)
def test_checker_fails_on_a_wildcard_in_the_inline_policy(statement: dict[str, Any], expected: str) -> None:
    document = download_document()
    document["Statement"].append(statement)
    problems = grant_problems("download", document, DOWNLOAD_NAMES)
    assert any(expected in problem for problem in problems), problems


def test_checker_fails_on_a_grant_the_plan_would_add() -> None:
    """An attachment not yet in the state is in planned_values, not in prior_state: it is still caught."""
    admin = {
        "address": "module.azs3copy.aws_iam_role_policy_attachment.admin",
        "type": "aws_iam_role_policy_attachment",
        "values": {"role": ROLE, "policy_arn": ADMIN},
    }
    plan = fragment(admin)
    plan["prior_state"] = {"values": fragment()["planned_values"]}
    _, problems = function_policies(plan)
    assert any("AdministratorAccess" in problem for problem in problems), problems
