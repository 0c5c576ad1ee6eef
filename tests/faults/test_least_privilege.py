"""Least privilege: each function's IAM policy, read from the Terraform plan of terraform/envs/local, names
exactly the actions its code uses, on exactly the resources it uses.

What each function's code calls, derived by reading the engine, the ledger and the transports:

* every function: (through Lambda) its log group (Lambda writes its logs with the role), its own dead-letter queue (the
  on-failure destination sends with the role), X-Ray segments when tracing is active, the KMS key (encrypted DLQs, topics, secret and objects);
  metrics are EMF lines in the log (Powertools), not PutMetricData calls.
* the ledger: `bump_attempt`, `claim`, `release`, `finish`, `set_upload`, `mark_reported` are UpdateItem (or
  TransactWriteItems of updates); `record_part`, `start_run` and the page/listing records are PutItem;
  `register_page` writes blobs with BatchWriteItem; the report's `blobs()` and `part_checksums` are Query.
* S3 on a versioned bucket: read-back of the version just written is GetObjectVersion, removing an
  unverified version is DeleteObjectVersion; HEAD is GetObject; CreateMultipartUpload, UploadPart,
  CompleteMultipartUpload and the run report are PutObject; `_upload_call` checks a failing upload with
  ListParts (ListMultipartUploadParts). Any function that can end a run's last blob writes the report.
"""

from __future__ import annotations

import json
from typing import Any

from tests.faults.conftest import REGION, World

Grant = tuple[str, str]

SECRET, OBJECTS, REPORTS, BUCKET, LEDGER, KEY, OWN_LOGS, OWN_DLQ = (
    "secret",
    "objects",
    "reports",
    "bucket",
    "ledger",
    "key",
    "own log group",
    "own dlq",
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
REPORTING = grants(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"], LEDGER) | grants(
    ["s3:PutObject"], REPORTS
)
SNS_STEP = grants(["dynamodb:UpdateItem"], LEDGER) | REPORTING  # bump_attempt, finish, the report
READ_SECRET = grants(["secretsmanager:GetSecretValue"], SECRET)
WRITE_AND_VERIFY = grants(
    [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ],
    OBJECTS,
)

USES: dict[str, set[Grant]] = {
    "launch-qualification": READ_SECRET
    | grants(["dynamodb:GetItem", "dynamodb:PutItem"], LEDGER)
    | grants(["sns:Publish"], "topic containers"),
    "find-blobs": READ_SECRET
    | SNS_STEP
    | grants(["dynamodb:BatchWriteItem", "dynamodb:PutItem"], LEDGER)
    | grants(["s3:ListBucket"], BUCKET)
    | grants(["s3:GetObject"], OBJECTS)
    | grants(["sns:Publish"], "topic containers")
    | grants(["sns:Publish"], "topic small-blobs")
    | grants(["sns:Publish"], "topic large-blobs"),
    "download": READ_SECRET | SNS_STEP | WRITE_AND_VERIFY,
    "largefile-initializer": SNS_STEP
    | grants(["s3:AbortMultipartUpload", "s3:PutObject"], OBJECTS)
    | grants(["sns:Publish"], "topic parts"),
    "largefile-parter": READ_SECRET
    | SNS_STEP
    | grants(["dynamodb:PutItem"], LEDGER)
    | grants(["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"], OBJECTS)
    | grants(["sns:Publish"], "topic recombine"),
    "largefile-recombinator": SNS_STEP | WRITE_AND_VERIFY,
}


def plan_json(world: World) -> dict[str, Any]:
    plan = world.terraform.work / "least-privilege.tfplan"
    world.terraform.run(
        "plan", "-input=false", "-no-color", "-lock=false", f"-out={plan}", *world.terraform.vars()
    )
    document: dict[str, Any] = json.loads(world.terraform.run("show", "-json", "-no-color", str(plan)))
    return document


def role_policies(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's inline policy document by directory name, as the plan sees it."""
    found: dict[str, dict[str, Any]] = {}
    modules = [plan["prior_state"]["values"]["root_module"]]
    while modules:
        module = modules.pop()
        modules.extend(module.get("child_modules", []))
        for resource in module.get("resources", []):
            address = resource["address"]
            if resource["type"] == "aws_iam_role_policy" and 'module.function["' in address:
                directory = address.split('module.function["')[1].split('"]')[0]
                found[directory] = json.loads(resource["values"]["policy"])
    return found


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
    return names


def granted(document: dict[str, Any], names: dict[str, str]) -> set[Grant]:
    found: set[Grant] = set()
    for statement in document["Statement"]:
        assert statement.get("Effect", "Allow") == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        found |= {(action, names.get(resource, resource)) for action in actions for resource in resources}
    return found


def test_each_function_policy_names_only_what_its_code_uses(world: World) -> None:
    policies = role_policies(plan_json(world))
    assert sorted(policies) == sorted(USES)
    problems = []
    for directory, document in sorted(policies.items()):
        names = resource_names(world, directory)
        have, need = granted(document, names), USES[directory] | COMMON
        if ("s3:PutObject", OBJECTS) in have:
            have.add(("s3:PutObject", REPORTS))  # every object includes the reports
        extra, missing = sorted(have - need), sorted(need - have)
        if extra:
            problems.append(f"{directory} is granted what its code never uses: {extra}")
        if missing:
            problems.append(f"{directory} lacks what its code calls: {missing}")
    assert not problems, "\n".join(problems)
