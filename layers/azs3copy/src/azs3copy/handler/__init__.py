"""Lambda glue: the function environment, building the transports once per warm container, the SNS event."""
