"""Azure Event Grid, played locally: the payloads it delivers for blob events (the Event Grid schema and
CloudEvents 1.0, as Azure documents them) and their delivery to a function URL with the events token.

Azurite raises no events, so the demo, the bench and the tests upload a blob and then deliver what Event Grid
would announce for it."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

TOKEN_HEADER = "X-Azs3copy-Token"
ACCOUNT_TOPIC = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def next_sequencer() -> str:
    """A sequencer as Azure writes them: hex digits of one width, growing with every change of a blob."""
    with _sequence_lock:
        return f"{next(_sequence):032x}"


def blob_event(
    kind: str,
    container: str,
    name: str,
    *,
    etag: str = "0x0",
    size: int = 0,
    sequencer: str | None = None,
    schema: str = "eventgrid",
    account_url: str = "http://127.0.0.1:10000/devstoreaccount1",
) -> dict[str, Any]:
    """One `Microsoft.Storage.Blob<kind>` event (kind: Created or Deleted) in the Event Grid schema or as a
    CloudEvent."""
    event_type = f"Microsoft.Storage.Blob{kind}"
    data: dict[str, Any] = {
        "api": "PutBlob" if kind == "Created" else "DeleteBlob",
        "requestId": str(uuid.uuid4()),
        "eTag": etag,
        "contentType": "application/octet-stream",
        "contentLength": size,
        "blobType": "BlockBlob",
        "url": f"{account_url}/{container}/{name}",
        "sequencer": sequencer or next_sequencer(),
        "storageDiagnostics": {"batchId": str(uuid.uuid4())},
    }
    subject = f"/blobServices/default/containers/{container}/blobs/{name}"
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if schema == "cloudevents":
        return {
            "specversion": "1.0",
            "type": event_type,
            "source": ACCOUNT_TOPIC,
            "id": str(uuid.uuid4()),
            "time": moment,
            "subject": subject,
            "data": data,
        }
    return {
        "topic": ACCOUNT_TOPIC,
        "subject": subject,
        "eventType": event_type,
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": moment,
    }


def validation_event(code: str) -> list[dict[str, Any]]:
    """The Event Grid schema's subscription validation handshake."""
    return [
        {
            "id": str(uuid.uuid4()),
            "topic": ACCOUNT_TOPIC,
            "subject": "",
            "data": {
                "validationCode": code,
                "validationUrl": f"https://example.invalid/validate?code={code}",
            },
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "metadataVersion": "1",
            "dataVersion": "1",
        }
    ]


def deliver(
    url: str,
    body: Any,
    *,
    token: str | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send one delivery as Event Grid does; returns the status, headers and body of the answer."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent[TOKEN_HEADER] = token
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def local_events_url(runtime_url: str) -> str:
    """The loopback URL the local runtime serves blob-events' function URL on."""
    with urllib.request.urlopen(f"{runtime_url}/local/function-urls", timeout=10) as response:
        urls: dict[str, str] = json.loads(response.read())
    found = [url for name, url in urls.items() if name.endswith("-blob-events")]
    if not found:
        raise RuntimeError(f"the local runtime serves no blob-events function URL (it serves {sorted(urls)})")
    return found[0]


def wait_verified(s3: Any, bucket: str, key: str, etag: str, size: int, timeout: float = 120.0) -> float:
    """Wait until S3 holds the object at `key` verified as a copy of this blob version (its verified mark, in
    its metadata or, marked after a read-back, its tags); returns the monotonic time it was seen. Raises
    TimeoutError."""
    from azs3copy.messages import BlobRef
    from azs3copy.steps.verify import VERIFIED_MARK, verified_mark

    mark = verified_mark(BlobRef("", "", size, etag, datetime.now(UTC)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(VERIFIED_MARK) == mark:
                return time.monotonic()
            tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        except s3.exceptions.ClientError:
            tags = []
        if any(tag["Key"] == VERIFIED_MARK and tag["Value"] == mark for tag in tags):
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"s3://{bucket}/{key} was not verified at ETag {etag} within {timeout:.0f} s")
