"""The local moto server's fixes (devenv.moto_main), each against the behaviour it must keep.

- A resent CreateFunction is idempotent: the AWS SDK resends a request whose response it lost; if the first
  attempt created the function, moto answers the resend with 409 and the Terraform provider retries that
  for five minutes before failing the apply. The local server returns the existing function when the
  request asks for exactly it, and still refuses a different function of the same name.
- TransactWriteItems backs up only the items it writes, not the whole table: a cancelled transaction must
  still leave every item as it was.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devenv.emulators import MotoServer
from devenv.runtime import aws_client
from tests.support.aws import create_ledger_table


def code(text: str) -> bytes:
    """A zip of the handler whose bytes depend on the text alone (a fixed timestamp)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("handler.py", date_time=(1980, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def role(moto_server: MotoServer) -> str:
    iam = aws_client("iam", moto_server.endpoint, "us-east-1")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    created = iam.create_role(
        RoleName=f"idem-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(created["Role"]["Arn"])


def spec(name: str, role: str, source: str, memory: int = 256) -> dict[str, Any]:
    return {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": role,
        "Handler": "handler.lambda_handler",
        "Code": {"ZipFile": code(source)},
        "MemorySize": memory,
        "Timeout": 30,
        "Environment": {"Variables": {"A": "1"}},
    }


def test_a_resent_create_of_the_same_function_returns_it(moto_server: MotoServer, role: str) -> None:
    lam = aws_client("lambda", moto_server.endpoint, "us-east-1")
    name = f"idem-{uuid.uuid4().hex[:8]}"
    first = lam.create_function(**spec(name, role, "def lambda_handler(e, c): return 1\n"))
    again = lam.create_function(**spec(name, role, "def lambda_handler(e, c): return 1\n"))
    assert again["FunctionArn"] == first["FunctionArn"]
    assert again["CodeSha256"] == first["CodeSha256"]
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]].count(name) == 1


@pytest.mark.parametrize(
    "change",
    [{"source": "def lambda_handler(e, c): return 2\n"}, {"memory": 512}],
    ids=["other-code", "other-memory"],
)
def test_a_create_of_a_different_function_with_the_same_name_is_refused(
    moto_server: MotoServer, role: str, change: dict[str, Any]
) -> None:
    lam = aws_client("lambda", moto_server.endpoint, "us-east-1")
    name = f"idem-{uuid.uuid4().hex[:8]}"
    lam.create_function(**spec(name, role, "def lambda_handler(e, c): return 1\n"))
    asked = {"source": "def lambda_handler(e, c): return 1\n", "memory": 256, **change}
    with pytest.raises(ClientError) as refused:
        lam.create_function(**spec(name, role, asked["source"], asked["memory"]))
    assert refused.value.response["Error"]["Code"] == "ResourceConflictException"
    assert lam.get_function(FunctionName=name)["Configuration"]["MemorySize"] == 256


@pytest.fixture(scope="module")
def table(moto_server: MotoServer) -> tuple[Any, str]:
    dynamodb = aws_client("dynamodb", moto_server.endpoint, "us-east-1")
    name = f"tx-{uuid.uuid4().hex[:8]}"
    create_ledger_table(dynamodb, name)
    return dynamodb, name


def key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "run"}, "sk": {"S": sk}}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.put_item(TableName=name, Item={**key("RUN"), "copied": {"N": "7"}})
    dynamodb.put_item(TableName=name, Item={**key("BLOB#a"), "state": {"S": "copied"}, "size": {"N": "5"}})
    dynamodb.put_item(TableName=name, Item={**key("BLOB#b"), "state": {"S": "copied"}})
    before = {sk: dynamodb.get_item(TableName=name, Key=key(sk)).get("Item") for sk in ("RUN", "BLOB#a")}

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": name,
                        "Key": key("RUN"),
                        "UpdateExpression": "ADD copied :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": name, "Item": {**key("BLOB#a"), "state": {"S": "failed"}}}},
                {"Put": {"TableName": name, "Item": {**key("BLOB#new"), "state": {"S": "pending"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": key("BLOB#b"),
                        "UpdateExpression": "SET #s = :x",
                        "ConditionExpression": "#s = :pending",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":x": {"S": "x"}, ":pending": {"S": "pending"}},
                    }
                },
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    after = {sk: dynamodb.get_item(TableName=name, Key=key(sk)).get("Item") for sk in ("RUN", "BLOB#a")}
    assert after == before
    assert "Item" not in dynamodb.get_item(TableName=name, Key=key("BLOB#new"))
    assert dynamodb.get_item(TableName=name, Key=key("BLOB#b"))["Item"]["state"] == {"S": "copied"}


def test_a_transaction_that_succeeds_writes_every_item(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.put_item(TableName=name, Item={**key("RUN2"), "copied": {"N": "1"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": name,
                    "Key": key("RUN2"),
                    "UpdateExpression": "ADD copied :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Put": {"TableName": name, "Item": {**key("BLOB#c"), "state": {"S": "copied"}}}},
        ]
    )
    assert dynamodb.get_item(TableName=name, Key=key("RUN2"))["Item"]["copied"] == {"N": "2"}
    assert dynamodb.get_item(TableName=name, Key=key("BLOB#c"))["Item"]["state"] == {"S": "copied"}
