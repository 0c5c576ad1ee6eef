"""Blanking credentials out of every text that leaves a function (reasons, logs, dead letters)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SIG = re.compile(r"(sig|se|sv|sp|sr|st|skoid|sktid|skt|ske|sks|skv)=[^&\s'\"]+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every credential value and SAS signature parameter blanked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SIG.sub(lambda match: f"{match.group(1)}=***", text)
