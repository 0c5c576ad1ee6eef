"""The local environment as the CLI sees it: the deployment record `make up` writes (`.local/deployment.json`).

The CLI only reads it; everything that starts and stops the environment lives in devenv/, which is never
shipped and imports this module, not the other way round."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEPLOYMENT_RECORD = Path(".local") / "deployment.json"


class LocalEnvironmentError(RuntimeError):
    """The local environment is missing, half-started or did not start."""


def find_deployment(start: Path | None = None) -> Path:
    """`.local/deployment.json` in the working directory or the nearest directory above it that has one (the
    checkout `make up` ran in); the working directory's when none has one, so the error names it."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / DEPLOYMENT_RECORD).exists():
            return directory / DEPLOYMENT_RECORD
    return here / DEPLOYMENT_RECORD


def load_deployment(path: Path | None = None) -> dict[str, Any]:
    """The deployment file `make up` wrote. Raises LocalEnvironmentError with what to do when it is missing."""
    path = path or find_deployment()
    if not path.exists():
        raise LocalEnvironmentError(f"no local environment ({path} is missing): start it with `make up`")
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise LocalEnvironmentError(
            f"{path} is not valid JSON ({error}): run `make down` and `make up`"
        ) from None
    lacking = [
        key for key in ("aws_endpoint", "region") if not isinstance(document, dict) or key not in document
    ]
    if lacking:
        raise LocalEnvironmentError(
            f"{path} is not a deployment record `make up` wrote (no {', '.join(lacking)}): run `make down` and "
            "`make up`"
        )
    return document


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
