"""Run the step a message asks for (the local runtime and tests use this; each handler calls one step)."""

from __future__ import annotations

from azs3copy.messages import (
    DownloadTask,
    FindBlobsTask,
    LargefileInitializerTask,
    LargefileParterTask,
    Message,
)
from azs3copy.steps.context import Deps, Invocation, Outcome
from azs3copy.steps.download import download
from azs3copy.steps.find_blobs import find_blobs
from azs3copy.steps.largefile_initializer import largefile_initializer
from azs3copy.steps.largefile_parter import largefile_parter
from azs3copy.steps.largefile_recombinator import largefile_recombinator


def dispatch(deps: Deps, message: Message, invocation: Invocation) -> Outcome:
    """Run the step a message asks for (the local runtime and tests use this; handlers call one step)."""
    if isinstance(message, FindBlobsTask):
        return find_blobs(deps, message, invocation)
    if isinstance(message, DownloadTask):
        return download(deps, message, invocation)
    if isinstance(message, LargefileInitializerTask):
        return largefile_initializer(deps, message, invocation)
    if isinstance(message, LargefileParterTask):
        return largefile_parter(deps, message, invocation)
    return largefile_recombinator(deps, message, invocation)
