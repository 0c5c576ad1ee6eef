"""The local moto server's one deviation from moto for Lambda: a resent CreateFunction is idempotent.

The AWS SDK resends a request whose response it lost; if the first attempt created the function, real moto
answers the resend with 409 and the Terraform provider retries that for five minutes before failing the
apply. The local server returns the existing function when the request asks for exactly it.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from azs3copy.local.emulators import MotoServer
from azs3copy.local.runtime import aws_client


def code(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", text)
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
