"""The Terraform of issue 3: formatted, valid, clean under checkov, and really applied against moto.

The local root is applied to a moto server of its own, planned again (no changes) and destroyed; a copy of
the example root outside the repository is planned against it. Terraform runs offline: providers come
from the filesystem mirror configured by `make tf-config`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from devenv.emulators import MotoServer

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
LOCAL_ROOT = TERRAFORM / "envs" / "local"
EXAMPLE_ROOT = TERRAFORM / "envs" / "example"
FUNCTIONS = [
    "blob-events",
    "download",
    "find-blobs",
    "largefile-initializer",
    "largefile-parter",
    "largefile-recombinator",
    "launch-qualification",
]

pytestmark = pytest.mark.slow


def make(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(ROOT), *targets], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI configuration, and a copy of the layers and function zips that no later build can change."""
    result = make("tf-config", "layers", "function-zips")
    assert result.returncode == 0, result.stdout + result.stderr
    build = tmp_path_factory.mktemp("build")
    for kind in ("layers", "functions"):
        (build / kind).mkdir()
        for archive in [*(ROOT / "build" / kind).glob("*.zip"), *(ROOT / "build" / kind).glob("*.json")]:
            shutil.copy2(archive, build / kind / archive.name)
    # What the functions of envs/local run on, as make's defaults build it (LAMBDA_ARCH, LAMBDA_PYTHON).
    built_for = json.loads((build / "layers" / "azure-sdk.json").read_text())
    assert (built_for["architecture"], built_for["python_version"]) == ("arm64", "3.12")
    return build


@dataclass
class Terraform:
    """terraform for one root configuration, with its own data directory and state file."""

    root: Path
    work: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE" and not k.startswith("TF_")}
        env.update(self.extra_env)
        env["TF_CLI_CONFIG_FILE"] = str(ROOT / ".local" / "terraformrc")
        env["TF_DATA_DIR"] = str(self.work / ".terraform")
        env["TF_IN_AUTOMATION"] = "1"
        return env

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = ["terraform", f"-chdir={self.root}", *args]
        return subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, timeout: float = 300) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"terraform {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def init(self, backend: bool = True) -> None:
        args = ["init", "-input=false", "-no-color"]
        args += [f"-backend-config=path={self.work / 'terraform.tfstate'}"] if backend else ["-backend=false"]
        self.ok(*args)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server for this module alone, so the apply starts from an empty account."""
    with MotoServer.start(tmp_path_factory.mktemp("tf-moto")) as server:
        yield server


def local_vars(endpoint: str, build: Path) -> list[str]:
    return ["-var", f"aws_endpoint={endpoint}", "-var", f"build_dir={build}"]


def test_terraform_files_are_formatted(built: Path) -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(ROOT / ".local" / "terraformrc")},
    )
    assert result.returncode == 0, f"not formatted (run terraform fmt -recursive terraform):\n{result.stdout}"


@pytest.mark.parametrize("env", ["local", "example"])
def test_root_configuration_is_valid_without_the_build_output(env: str, built: Path, tmp_path: Path) -> None:
    """validate (make tf-validate) needs no zips: a copy of terraform/ with no build/ beside it validates."""
    copy = tmp_path / "repo" / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    terraform = Terraform(copy / "envs" / env, tmp_path)
    terraform.init(backend=False)
    assert "Success!" in terraform.ok("validate", "-no-color")


def test_tf_config_follows_the_mirror_and_leaves_an_unchanged_file_alone(tmp_path: Path) -> None:
    mirrors = [tmp_path / name for name in ("mirror-a", "mirror-b")]
    for mirror in mirrors:
        (mirror / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    rc = tmp_path / "terraformrc"

    def tf_config(mirror: Path) -> str:
        result = make(f"TF_RC={rc}", f"TF_MIRROR={mirror}", "tf-config")
        assert result.returncode == 0, result.stdout + result.stderr
        return rc.read_text()

    assert f'path    = "{mirrors[0]}"' in tf_config(mirrors[0])
    written = rc.stat().st_mtime_ns
    assert f'path    = "{mirrors[0]}"' in tf_config(mirrors[0])
    assert rc.stat().st_mtime_ns == written, "a second run with the same mirror rewrote the file"
    assert f'path    = "{mirrors[1]}"' in tf_config(mirrors[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror-a", "mirror-b", "terraformrc"]


def test_checkov_reports_no_failed_check() -> None:
    result = make("checkov")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "Failed checks: 0" in result.stdout


def test_a_copy_of_the_example_outside_the_repository_plans_with_its_tfvars(
    built: Path, moto: MotoServer, tmp_path: Path
) -> None:
    """docs/deploy.md's copy: the module source pointed at the checkout, build_dir set, example.tfvars used."""
    copy = tmp_path / "prod"
    shutil.copytree(EXAMPLE_ROOT, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    main = copy / "main.tf"
    source = 'source = "../../modules/azs3copy"'
    assert main.read_text().count(source) == 1
    modules = os.path.relpath(TERRAFORM / "modules" / "azs3copy", copy)
    main.write_text(main.read_text().replace(source, f'source = "{modules}"'))
    # The S3 backend needs a real bucket: a local state instead, as an override file leaves versions.tf alone.
    (copy / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    terraform = Terraform(
        copy, tmp_path, {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_S3_USE_PATH_STYLE": "true", **credentials}
    )
    terraform.init()
    plan = tmp_path / "tfplan"
    variables = ["-var-file=example.tfvars", "-var", f"build_dir={built}"]
    terraform.ok("plan", "-input=false", "-no-color", f"-out={plan}", *variables)

    planned = json.loads(terraform.ok("show", "-json", "-no-color", str(plan)))
    modules_left = [planned["planned_values"]["root_module"]]
    functions = {}
    while modules_left:
        module = modules_left.pop()
        modules_left.extend(module.get("child_modules", []))
        for resource in module.get("resources", []):
            if resource["type"] == "aws_lambda_function":
                functions[resource["values"]["function_name"]] = resource["values"]
    assert sorted(functions) == [f"azs3copy-{name}" for name in FUNCTIONS]
    for name, values in functions.items():
        assert values["filename"] == f"{built}/functions/{name.removeprefix('azs3copy-')}.zip"
        assert (values["runtime"], values["architectures"]) == ("python3.12", ["arm64"])


@pytest.fixture(scope="module")
def planner(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    """envs/local initialised once for the plan-only tests (no state: each plan starts from nothing)."""
    terraform = Terraform(LOCAL_ROOT, tmp_path_factory.mktemp("tf-plan"))
    terraform.init()
    return terraform


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            ["-var", "part_size_bytes=1048576"],
            "part_size_bytes must be a whole number of bytes between 5242880",
        ),
        (
            ["-var", "part_size_bytes=1073741824"],
            "function_memory_mb.largefile_parter must be at least twice part_size_bytes in MiB plus 256",
        ),
        (
            ["-var", "chunk_size_bytes=1048576"],
            "chunk_size_bytes must be a whole number of bytes between 5242880 (5 MiB",
        ),
        (["-var", "schedule_expression=0 2 * * *"], "schedule_expression must be cron("),
        (["-var", "schedule_expression=cron(0 2 * * *)"], "cron(...) takes six fields"),
        (["-var", "schedule_expression=cron(0 2 * * * *)"], "exactly one of day-of-month (3rd field)"),
        (["-var", "schedule_expression=cron(0 2 ? * ? *)"], "exactly one of day-of-month (3rd field)"),
        (["-var", "schedule_expression=rate(1 days)"], "rate(...) must be rate(1 minute), rate(1 hour)"),
        (["-var", "schedule_expression=rate(5 hour)"], "rate(...) must be rate(1 minute), rate(1 hour)"),
        (["-var", "schedule_expression=rate(0 minutes)"], "rate(...) must be rate(1 minute), rate(1 hour)"),
        (["-var", "schedule_timezone=Europe Paris"], "schedule_timezone must be an IANA time zone name"),
        (["-var", "storage_class=COLDLINE"], "storage_class must be one of STANDARD, INTELLIGENT_TIERING"),
        (
            ["-var", "function_maximum_concurrency={download=60}"],  # the reservation's default is 50
            "function_maximum_concurrency.download exceeds that function's reserved concurrency",
        ),
        (
            [
                "-var",
                "function_reserved_concurrency={largefile_parter=20}",
                "-var",
                "function_maximum_concurrency={largefile_parter=21, download=50}",
            ],
            "function_maximum_concurrency.largefile_parter exceeds that function's reserved concurrency",
        ),
        (["-var", "listing_shards=257"], "listing_shards must be a whole number from 0 to 256"),
    ],
    ids=[
        "part-size-below-5-MiB",
        "parter-memory-below-part-size",
        "chunk-size-below-5-MiB",
        "schedule-without-cron",
        "cron-with-five-fields",
        "cron-without-question-mark",
        "cron-with-two-question-marks",
        "rate-1-with-plural-unit",
        "rate-n-with-singular-unit",
        "rate-of-zero",
        "timezone-not-iana",
        "storage-class-s3-does-not-have",
        "maximum-concurrency-above-the-default-reservation",
        "maximum-concurrency-above-a-given-reservation",
        "listing-shards-above-256",
    ],
)
def test_plan_rejects_a_mistaken_variable_with_a_clear_message(
    variables: list[str], message: str, module_variables: Terraform
) -> None:
    result = module_variables.run("plan", "-input=false", "-no-color", "-var", "build_dir=build", *variables)
    assert result.returncode == 1
    assert "Invalid value for variable" in result.stderr
    assert message in " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def module_variables(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    """The module's variables.tf alone as a root configuration: its validations, evaluated by terraform plan in
    a second instead of a plan of the whole system each (the test below shows envs/local reaches them)."""
    root = tmp_path_factory.mktemp("tf-variables")
    shutil.copy2(TERRAFORM / "modules" / "azs3copy" / "variables.tf", root / "variables.tf")
    terraform = Terraform(root, root)
    terraform.init(backend=False)
    assert "No changes" in terraform.ok("plan", "-input=false", "-no-color", "-var", "build_dir=build")
    return terraform


def test_envs_local_hands_a_mistaken_variable_to_the_modules_check(
    built: Path, moto: MotoServer, planner: Terraform
) -> None:
    variables = ["-var", "part_size_bytes=1048576"]
    result = planner.run("plan", "-input=false", "-no-color", *local_vars(moto.endpoint, built), *variables)
    assert result.returncode == 1
    assert "Invalid value for variable" in result.stderr
    assert "part_size_bytes must be a whole number of bytes between 5242880" in " ".join(
        result.stderr.split()
    )


def test_plan_refuses_layers_built_for_another_architecture(
    built: Path, moto: MotoServer, planner: Terraform, tmp_path: Path
) -> None:
    """x86_64 wheels (make layers LAMBDA_ARCH=x86_64) never reach the arm64 functions of envs/local."""
    other = tmp_path / "build"
    shutil.copytree(built, other)
    built_for = other / "layers" / "azure-sdk.json"
    built_for.write_text(json.dumps({**json.loads(built_for.read_text()), "architecture": "x86_64"}))
    result = planner.run("plan", "-input=false", "-no-color", *local_vars(moto.endpoint, other))
    assert result.returncode == 1
    stderr = " ".join(result.stderr.split())
    assert "Resource precondition failed" in stderr
    assert "was built for x86_64 and Python 3.12, but the functions run on arm64 and python3.12" in stderr
    assert "make layers LAMBDA_ARCH=arm64 LAMBDA_PYTHON=3.12" in stderr

    built_for.unlink()
    result = planner.run("plan", "-input=false", "-no-color", *local_vars(moto.endpoint, other))
    assert result.returncode == 1
    assert "make layers LAMBDA_ARCH=arm64" in " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def applied(
    built: Path, moto: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Terraform, dict[str, object]]]:
    """envs/local applied to the module's moto server; destroyed at the end if a test did not."""
    terraform = Terraform(LOCAL_ROOT, tmp_path_factory.mktemp("tf-local"))
    terraform.init()
    try:
        result = terraform.run(
            "apply",
            "-input=false",
            "-no-color",
            "-auto-approve",
            *local_vars(moto.endpoint, built),
            timeout=420,
        )
        assert result.returncode == 0, (
            f"terraform apply:\n{result.stdout[-8000:]}\n{result.stderr}\n{moto_failures(moto)}"
        )
        outputs = json.loads(terraform.ok("output", "-json", "-no-color"))
        yield terraform, {name: value["value"] for name, value in outputs.items()}
    finally:
        terraform.run(
            "destroy", "-input=false", "-no-color", "-auto-approve", *local_vars(moto.endpoint, built)
        )


def moto_failures(moto: MotoServer, limit: int = 60) -> str:
    """The requests moto answered with an error, and any traceback it logged: what a failed apply asked."""
    lines = moto.log.read_text(errors="replace").splitlines() if moto.log.exists() else []
    failed = [line for line in lines if '" 2' not in line and '" 3' not in line]
    return f"moto log ({moto.log}), lines other than 2xx/3xx answers:\n" + "\n".join(failed[-limit:])


def client(service: str, moto: MotoServer) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_apply_creates_the_system_the_local_runtime_reads_back(
    applied: tuple[Terraform, dict[str, object]], moto: MotoServer
) -> None:
    _, outputs = applied
    names = outputs["function_names"]
    dlqs = outputs["dlq_urls"]
    assert isinstance(names, dict) and isinstance(dlqs, dict)
    assert sorted(names) == FUNCTIONS and sorted(dlqs) == FUNCTIONS

    lam = client("lambda", moto)
    sqs = client("sqs", moto)
    for directory, name in names.items():
        function = lam.get_function(FunctionName=name)
        config = function["Configuration"]
        assert function["Tags"]["azs3copy:component"] == directory
        assert config["Handler"] == "handler.lambda_handler"
        assert config["KMSKeyArn"] == outputs["kms_key_arn"]
        assert config["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == moto.endpoint
        assert config["Environment"]["Variables"]["AZS3COPY_LEDGER_TABLE"] == outputs["ledger_table"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlqs[directory], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        if directory == "launch-qualification":  # the schedule invokes it asynchronously
            invoke = lam.get_function_event_invoke_config(FunctionName=name)
            assert invoke["MaximumRetryAttempts"] == 2
            assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == dlq_arn

    launch = lam.get_function(FunctionName=names["launch-qualification"])["Configuration"]
    assert "AZS3COPY_BUCKET" not in launch["Environment"]["Variables"]
    subscriptions = client("sns", moto).list_subscriptions()["Subscriptions"]
    topics, queues = outputs["topic_arns"], outputs["queue_urls"]
    assert isinstance(topics, dict) and isinstance(queues, dict)
    assert sorted(queues) == sorted(topics)
    # Every step reads its own queue, fed by its topic: no topic invokes a function any more.
    assert not [s for s in subscriptions if s["Protocol"] == "lambda"]
    mappings = {
        m["FunctionArn"].rsplit(":", 1)[1]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]
    }
    for step, url in queues.items():
        name = names[step]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        fed = [s for s in subscriptions if s["Endpoint"] == attributes["QueueArn"]]
        assert [s["TopicArn"] for s in fed] == [topics[step]]
        assert int(attributes["MessageRetentionPeriod"]) == 14 * 24 * 3600
        timeout = lam.get_function(FunctionName=name)["Configuration"]["Timeout"]
        assert int(attributes["VisibilityTimeout"]) == 6 * timeout
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == 3
        assert (
            redrive["deadLetterTargetArn"]
            == sqs.get_queue_attributes(QueueUrl=dlqs[step], AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )
        mapping = mappings[name]
        assert mapping["EventSourceArn"] == attributes["QueueArn"]
        assert mapping["BatchSize"] == 1
        variables = lam.get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
        assert variables["AZS3COPY_QUEUE_URL"] == url and variables["AZS3COPY_MAX_ATTEMPTS"] == "3"
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function_event_invoke_config(FunctionName=name)
    secret = client("secretsmanager", moto).get_secret_value(SecretId=outputs["secret_id"])
    assert json.loads(secret["SecretString"]) == {"isactive": False, "begindate": "2024-01-01T00:00:00Z"}
    # blob-events alone has a function URL, open to Event Grid (the function checks its token), and output
    url = lam.get_function_url_config(FunctionName=names["blob-events"])
    assert url["AuthType"] == "NONE" and outputs["events_url"] == url["FunctionUrl"]
    for directory, name in names.items():
        if directory != "blob-events":
            with pytest.raises(lam.exceptions.ResourceNotFoundException):
                lam.get_function_url_config(FunctionName=name)


def test_the_key_lets_cloudwatch_logs_encrypt_only_the_functions_log_groups(
    applied: tuple[Terraform, dict[str, object]], moto: MotoServer
) -> None:
    _, outputs = applied
    kms = client("kms", moto)
    policy = json.loads(kms.get_key_policy(KeyId=str(outputs["kms_key_arn"]), PolicyName="default")["Policy"])
    (logs,) = [s for s in policy["Statement"] if s["Sid"] == "CloudWatchLogsEncryptsLogGroups"]
    (pattern,) = logs["Condition"]["ArnLike"].values()
    assert pattern == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/azs3copy-*"
    names = outputs["function_names"]
    assert isinstance(names, dict)
    groups = client("logs", moto).describe_log_groups()["logGroups"]
    ours = {g["logGroupName"] for g in groups if g.get("kmsKeyId") == outputs["kms_key_arn"]}
    assert ours == {f"/aws/lambda/{name}" for name in names.values()}


def state_resources(terraform: Terraform) -> Iterator[dict[str, Any]]:
    """Every resource of the state, from `terraform show -json`."""
    state = json.loads(terraform.ok("show", "-json", "-no-color"))
    modules = [state["values"]["root_module"]]
    while modules:
        module = modules.pop()
        modules.extend(module.get("child_modules", []))
        yield from module.get("resources", [])


INITIAL_STAGE = "azs3copy-initial"


def test_operator_edit_of_the_secret_survives_and_plan_shows_no_changes(
    applied: tuple[Terraform, dict[str, object]], moto: MotoServer, built: Path
) -> None:
    """Three operator edits later, plan is clean, the value is the operator's and Terraform's version lives.

    On AWS a version keeps its own labels when AWSCURRENT moves on, and a version left with none is
    deprecated and may be deleted (the provider would then create the initial value again, as AWSCURRENT).
    moto drops every other label of the version AWSCURRENT leaves, so after each edit the label is put back
    where AWS would have kept it: the state then reads as on AWS.
    """
    terraform, outputs = applied
    secrets = client("secretsmanager", moto)
    secret_id = str(outputs["secret_id"])
    (tracked,) = [
        r["values"]["version_id"]
        for r in state_resources(terraform)
        if r["address"].endswith("module.secret.aws_secretsmanager_secret_version.initial")
    ]

    def stages() -> dict[str, set[str]]:
        versions = secrets.list_secret_version_ids(SecretId=secret_id)["Versions"]
        return {v["VersionId"]: set(v.get("VersionStages", [])) for v in versions}

    assert stages()[tracked] == {"AWSCURRENT", INITIAL_STAGE}
    edits = [
        {"isactive": True, "begindate": f"2025-0{n}-01T00:00:00Z", "containers": [f"c{n}"]} for n in (1, 2, 3)
    ]
    for edited in edits:
        secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(edited))
        if INITIAL_STAGE not in stages()[tracked]:
            secrets.update_secret_version_stage(
                SecretId=secret_id, VersionStage=INITIAL_STAGE, MoveToVersionId=tracked
            )

    result = terraform.run(
        "plan", "-input=false", "-no-color", "-detailed-exitcode", *local_vars(moto.endpoint, built)
    )
    assert result.returncode == 0, (
        f"plan after operator edits shows changes or failed:\n{result.stdout}\n{result.stderr}"
    )
    assert json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"]) == edits[-1]
    assert stages()[tracked] == {INITIAL_STAGE}, "Terraform's version must keep a label of its own"


def role_policies(terraform: Terraform) -> dict[str, dict[str, Any]]:
    """Each function's policy document by directory name, from `terraform show -json`."""
    policies = {}
    for resource in state_resources(terraform):
        if (
            resource["address"].endswith("aws_iam_role_policy.this")
            and ".module.function[" in resource["address"]
        ):
            directory = resource["address"].split('module.function["')[1].split('"]')[0]
            policies[directory] = json.loads(resource["values"]["policy"])
    return policies


def test_each_function_role_names_only_the_actions_it_uses(
    applied: tuple[Terraform, dict[str, object]],
) -> None:
    terraform, outputs = applied
    policies = role_policies(terraform)
    assert sorted(policies) == FUNCTIONS

    def as_list(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    def actions(document: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for statement in document["Statement"]:
            listed = set(as_list(statement["Action"]))
            found |= listed
            if "*" in as_list(statement["Resource"]):
                # Only actions that name no resource may use "*" (metrics are EMF log lines, not API calls).
                assert listed <= {"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
        return found

    granted = {directory: actions(document) for directory, document in policies.items()}
    for directory, names in granted.items():
        assert not [a for a in names if "*" in a], f"{directory} has wildcard actions"
        reads_secret = "secretsmanager:GetSecretValue" in names
        assert reads_secret == (
            directory in {"launch-qualification", "find-blobs", "download", "largefile-parter", "blob-events"}
        )
    assert "s3:ListBucket" in granted["find-blobs"]
    # without it S3 answers a read of a missing key with 403, and a gone object reads as a refused one
    assert "s3:ListBucket" in granted["download"] and "s3:ListBucket" in granted["largefile-recombinator"]
    assert "s3:ListMultipartUploadParts" in granted["largefile-recombinator"]
    assert not [a for a in granted["launch-qualification"] if a.startswith("s3:")]
    publishes = {d for d, names in granted.items() if "sns:Publish" in names}
    assert publishes == {  # download publishes nothing; the recombinator only its own continuations
        "blob-events",
        "launch-qualification",
        "find-blobs",
        "largefile-initializer",
        "largefile-parter",
        "largefile-recombinator",
    }
    # Each step consumes its own queue and no other; launch-qualification consumes none.
    consume = {
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    }
    queues = outputs["queue_urls"]
    assert isinstance(queues, dict)
    for directory, document in policies.items():
        consumed = [
            resource
            for statement in document["Statement"]
            if set(as_list(statement["Action"])) & consume
            for resource in as_list(statement["Resource"])
        ]
        if directory in ("launch-qualification", "blob-events"):  # the schedule's target, the function URL's
            assert consumed == [] and directory not in queues
            continue
        assert consume <= granted[directory]
        assert [arn.rsplit(":", 1)[1] for arn in consumed] == [str(queues[directory]).rsplit("/", 1)[1]]
    secret = str(outputs["secret_id"])
    assert secret in json.dumps(policies["download"]) and secret not in json.dumps(
        policies["largefile-initializer"]
    )


def test_destroy_removes_everything(
    applied: tuple[Terraform, dict[str, object]], moto: MotoServer, built: Path
) -> None:
    terraform, outputs = applied
    terraform.ok(
        "destroy",
        "-input=false",
        "-no-color",
        "-auto-approve",
        *local_vars(moto.endpoint, built),
        timeout=300,
    )
    assert terraform.ok("state", "list", "-no-color").strip() == ""
    assert client("lambda", moto).list_functions()["Functions"] == []
    buckets = [b["Name"] for b in client("s3", moto).list_buckets()["Buckets"]]
    assert outputs["bucket"] not in buckets
