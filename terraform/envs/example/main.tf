# azs3copy in a real AWS account (docs/deploy.md). Copy this directory, set the backend in versions.tf and
# the region in example.tfvars, read the values below and change those your deployment needs. Inputs not
# set here keep the module's defaults: terraform/modules/azs3copy/README.md lists every one.
# Never put credentials here or in a tfvars file: they go into the secret after apply.

module "azs3copy" {
  # Where the modules are. A copy of this directory outside terraform/envs/ points it at the repository,
  # e.g. "git::https://<your git host>/<org>/azs3copy.git//terraform/modules/azs3copy?ref=<tag>", or at a
  # checkout by a relative path (an absolute one does not work: docs/deploy.md).
  source = "../../modules/azs3copy"

  # What `make layers function-zips` built; a copy outside terraform/envs/ sets var.build_dir.
  build_dir = coalesce(var.build_dir, "${path.module}/../../../build")
  # Lambda runtime and architecture of the functions and layers: change them together with
  # `make layers LAMBDA_PYTHON=... LAMBDA_ARCH=...` (plan refuses layers built for anything else).
  runtime      = "python3.12"
  architecture = "arm64"

  # Prefix of every name (functions <prefix>-<function>, the secret, <prefix>-ledger; the CLI's --prefix):
  # change it for a second deployment in the same account and region.
  name_prefix = "azs3copy"
  # Destination bucket; null names it <name_prefix>-<account id>-<region>. Set a name to choose your own.
  bucket_name = null

  # Protection of the data: keep these until teardown, when bucket_force_destroy = true (deletes every
  # object and version) and ledger_deletion_protection = false are applied before `terraform destroy`.
  bucket_force_destroy       = false
  ledger_deletion_protection = true
  # Days a destroyed secret and key can still be restored (secret 0 or 7-30, key 7-30).
  secret_recovery_window_days = 30
  kms_deletion_window_days    = 30

  # begindate of the secret's first value (blobs modified earlier are not copied); only read when Terraform
  # creates the secret, later the operators set it (`azs3copy set-begindate`).
  begindate = "2024-01-01T00:00:00Z"

  # When runs start, in EventBridge Scheduler syntax and the given IANA time zone; schedule_enabled = false
  # pauses the schedule (runs by hand still work).
  schedule_expression = "cron(0 2 * * ? *)"
  schedule_timezone   = "Europe/Paris"
  schedule_enabled    = true

  # Blobs of 100 MiB and more take the multipart path, in 16 MiB parts; raise the part size for very large
  # blobs (the parter's memory below must then grow too).
  large_threshold_bytes = 104857600
  part_size_bytes       = 16777216
  # Streaming chunk (and part size) of the small-blob path: 5 MiB to 256 MiB.
  chunk_size_bytes = 16777216
  # How each copy is checked: "checksum" has S3 check the CRC32 sent with every write (and the whole object's
  # on completion) and writes the verified mark with the object; "readback" also reads every object back.
  verify = "checksum"

  # S3 storage class of the copies when the secret names none (its storage_class and tier_storage_classes
  # keys pick per run and per Azure access tier): STANDARD, INTELLIGENT_TIERING, STANDARD_IA, GLACIER_IR, ...
  storage_class = "STANDARD"

  # Memory in MiB per function, only the keys you change (the others keep the module's defaults). The parter
  # needs at least 2 × part size in MiB + 256 and copies blobs up to 10,000 × (memory - 256) / 2 MiB.
  function_memory_mb = {
    largefile_parter = 1024
  }
  # Timeout in seconds per function (1-900); {} keeps launch 60, initializer 120, the others 900.
  function_timeout_seconds = {}
  # Reserved concurrency per function (-1: the account's shared pool). The account's quota must exceed their
  # sum (285 by default) by 100: lower these in an account with a small quota.
  function_reserved_concurrency = {
    largefile_parter = 200
    download         = 50
  }
  # Most invocations at once of each step, reading its SQS queue (2-1000; left out: its reserved concurrency).
  # Work beyond that waits in the queue (up to 14 days), never in Lambda's own queue.
  function_maximum_concurrency = {}
  # Retries of a failed step message (or scheduled launch) before it goes to the function's dead-letter
  # queue (0-2), each after retry_delay_seconds times its attempt.
  maximum_retry_attempts = 2
  retry_delay_seconds    = 60
  # Days the functions' logs are kept (a value CloudWatch Logs accepts).
  log_retention_days = 365

  # Who reads the alarms: each address confirms the mail AWS sends it. Replace it with your on-call address,
  # or name an existing on-call SNS topic in extra_alarm_actions.
  alarm_email_addresses = ["data-platform-on-call@example.com"]
  extra_alarm_actions   = []

  # Tags on every resource, besides the provider's default tags (providers.tf).
  tags = {
    "cost-center" = "data-platform"
  }
}
