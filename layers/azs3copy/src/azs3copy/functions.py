"""azs3copy's functions, written once. A function's name is its `lambdas/<name>/` directory, its Lambda's
name after the prefix and its step module (`steps/<name with _>.py`); for the pipeline's six, also the SNS
topic that feeds it (but the first, started by the schedule), that topic's environment variable and the kind
of the messages it takes."""

from __future__ import annotations

#: The scheduled pipeline: the launch, then the five functions each fed by its own SNS topic.
PIPELINE = (
    "launch-qualification",
    "find-blobs",
    "download",
    "largefile-initializer",
    "largefile-parter",
    "largefile-recombinator",
)
#: Fed by Azure Event Grid through its function URL, not by a topic: it hands blobs to the pipeline's copy path.
BLOB_EVENTS = "blob-events"
FUNCTIONS = (*PIPELINE, BLOB_EVENTS)
#: The functions each one hands work to (publishes to the topics of); docs/design.md draws it. find-blobs
#: hands the rest of a long listing to itself, the recombinator the rest of a long read-back.
HANDS_TO: dict[str, tuple[str, ...]] = {
    "launch-qualification": ("find-blobs",),
    "find-blobs": ("find-blobs", "download", "largefile-initializer"),
    "download": (),
    "largefile-initializer": ("largefile-parter",),
    "largefile-parter": ("largefile-recombinator",),
    "largefile-recombinator": ("largefile-recombinator",),
    "blob-events": ("download", "largefile-initializer"),
}


def snake(function: str) -> str:
    """The function's name as a Python identifier: its step module and its field of Topics."""
    return function.replace("-", "_")


def topic_variable(function: str) -> str:
    """The environment variable (after AZS3COPY_) that holds the ARN of the topic feeding `function`."""
    return "TOPIC_" + snake(function).upper()
