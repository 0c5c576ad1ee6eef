# Values of one deployment (copy, rename, edit). No credentials here: they go into the secret.
region      = "eu-west-1"
name_prefix = "azs3copy"
# bucket_name = "my-company-azure-copy"   # default: <name_prefix>-<account id>-<region>

begindate           = "2024-01-01T00:00:00Z"
schedule_expression = "cron(0 2 * * ? *)"
schedule_timezone   = "Europe/Paris"
schedule_enabled    = true

large_threshold_bytes = 104857600 # 100 MiB and more: multipart
part_size_bytes       = 16777216  # 16 MiB parts
verify                = "readback"

function_memory_mb = {
  largefile_parter = 1024 # at least 2 × part size in MiB + 256; blobs up to 10,000 × (memory - 256) / 2 MiB
}
function_reserved_concurrency = {
  largefile_parter = 200
  download         = 50
}

log_retention_days    = 365
extra_alarm_actions   = [] # e.g. ["arn:aws:sns:eu-west-1:111122223333:on-call"]
alarm_email_addresses = ["data-platform-on-call@example.com"]

tags = {
  "cost-center" = "data-platform"
}
