"""`azs3copy enable` / `disable`: set the secret's isactive."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from azs3copy.cli.target import CliError, Target, read_secret, write_secret
from azs3copy.settings import parse_settings


def cmd_enable(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    document = read_secret(target)
    if args.command == "enable":
        settings = parse_settings(json.dumps({**document, "isactive": True}))
        if settings.azure is None:
            raise CliError(
                "not enabled: the secret has no Azure credentials yet (azs3copy set-azure-credentials)"
            )
    document["isactive"] = args.command == "enable"
    write_secret(target, document)
    state = "enabled: runs start on the schedule" if document["isactive"] else "disabled: no new runs start"
    print(f"{state} (isactive = {str(document['isactive']).lower()} in {target.secret_id})", file=out)
    return 0
