"""Keep the SDKs' wire loggers out of DEBUG, whatever level the root logger is given.

At DEBUG, botocore logs every request's parameters and every response body (`botocore.endpoint`,
`botocore.parsers`: GetSecretValue's SecretString, PutSecretValue's, with the Azure credentials in them) and
urllib3 logs each request line (an Azure SAS token's signature is in the URL). Those records are never
needed to run azs3copy, so the loggers that carry them stay at INFO even when LOG_LEVEL is DEBUG.
"""

from __future__ import annotations

import logging

WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.hooks", "urllib3.connectionpool")


def quiet_wire_loggers() -> None:
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
