"""`azs3copy set-begindate DATE`: what to copy, blobs modified at or after DATE (UTC)."""

from __future__ import annotations

import argparse
from typing import TextIO

from azs3copy.cli.target import CliError, Target, read_secret, write_secret
from azs3copy.errors import ConfigError
from azs3copy.settings import parse_begindate


def cmd_set_begindate(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    try:
        moment = parse_begindate(args.date)
    except ConfigError:
        raise CliError(
            f"bad date {args.date!r}: give an ISO 8601 date or date-time, e.g. 2024-01-31 or 2024-01-31T08:00:00Z"
        ) from None
    document = read_secret(target)
    document["begindate"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    write_secret(target, document)
    print(f"begindate = {document['begindate']}: blobs modified at or after it are copied", file=out)
    return 0
