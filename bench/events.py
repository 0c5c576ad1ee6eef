"""Freshness through Event Grid events: the time from a blob's upload to its verified object in S3, over a
stream of uploads, each followed by the BlobCreated event Event Grid would deliver to blob-events' function
URL (served by the local runtime). Azurite raises no events, so Event Grid's own delay (typically under a
second in Azure) is not in these figures; everything after the delivery is: the token check, the properties
read, the queuing, SNS, download, the read-back and the verified tag.

    python -m bench.run --only events [--event-uploads 40]
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench import pipeline
from bench.common import MiB, aws_client, azure_service, s3_client, say
from devenv.event_grid import blob_event, deliver, local_events_url, wait_verified

CONTAINER = "bench-events"
#: Seconds between two uploads of the stream (a steady trickle, as a data pipeline writes).
INTERVAL = 0.25


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def measure_events(
    tuning: dict[str, int | str], concurrency: int, uploads: int = 40, size: int = 256 * 1024
) -> dict[str, Any]:
    """Upload `uploads` blobs of `size` bytes, one every INTERVAL seconds, each announced by its event; the
    latency of each is from the start of its upload to the moment S3 holds it verified."""
    env = pipeline.start(dict(tuning), concurrency)
    try:
        token = os.urandom(24).hex()
        secrets = aws_client("secretsmanager", env.moto)
        secrets.put_secret_value(
            SecretId=env.deployment["secret_id"],
            SecretString=json.dumps(
                {
                    "isactive": True,
                    "begindate": "2000-01-01T00:00:00Z",
                    "azure": {"connection_string": env.azurite_connection_string},
                    "containers": [CONTAINER],
                    "events_token": token,
                }
            ),
        )
        service = azure_service(env.azurite_connection_string)
        if not service.get_container_client(CONTAINER).exists():
            service.create_container(CONTAINER)
        url = local_events_url(env.deployment["runtime_url"])
        s3 = s3_client(env.moto)
        latencies: list[float] = []
        lock = threading.Lock()

        def one(index: int) -> None:
            name = f"stream/{time.time_ns()}-{index:04d}.bin"
            data = os.urandom(size)
            started = time.monotonic()
            etag = str(service.get_blob_client(CONTAINER, name).upload_blob(data, overwrite=True)["etag"])
            status, _, body = deliver(
                url, [blob_event("Created", CONTAINER, name, etag=etag, size=size)], token=token
            )
            if status != 200:
                raise RuntimeError(f"blob-events answered {status}: {body[:200]!r}")
            seen = wait_verified(s3, env.bucket, f"{CONTAINER}/{name}", etag, size, timeout=300)
            with lock:
                latencies.append(seen - started)

        say(
            f"events: {uploads} uploads of {size // 1024} KiB, one every {INTERVAL} s, each announced by its event"
        )
        with ThreadPoolExecutor(max_workers=uploads) as pool:
            futures = []
            for index in range(uploads):
                futures.append(pool.submit(one, index))
                time.sleep(INTERVAL)
            for future in futures:
                future.result()
        return {
            "uploads": uploads,
            "blob_bytes": size,
            "interval_s": INTERVAL,
            "latencies_s": [round(value, 3) for value in sorted(latencies)],
            "event_latency_p50_s": round(percentile(latencies, 0.50), 3),
            "event_latency_p99_s": round(percentile(latencies, 0.99), 3),
            "blob_mib": round(size / MiB, 3),
        }
    finally:
        pipeline.stop(env)
