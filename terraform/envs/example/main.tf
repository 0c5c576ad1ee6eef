# azs3copy in a real AWS account. Copy this directory, edit the backend in versions.tf and the values in
# example.tfvars, then follow docs/deploy.md.

module "azs3copy" {
  source = "../../modules/azs3copy"

  build_dir                          = coalesce(var.build_dir, "${path.module}/../../../build")
  runtime                            = var.runtime
  name_prefix                        = var.name_prefix
  bucket_name                        = var.bucket_name
  bucket_versioning                  = var.bucket_versioning
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  abort_incomplete_multipart_days    = var.abort_incomplete_multipart_days
  bucket_force_destroy               = var.bucket_force_destroy
  ledger_deletion_protection         = var.ledger_deletion_protection
  secret_recovery_window_days        = var.secret_recovery_window_days
  kms_deletion_window_days           = var.kms_deletion_window_days
  begindate                          = var.begindate
  large_threshold_bytes              = var.large_threshold_bytes
  part_size_bytes                    = var.part_size_bytes
  chunk_size_bytes                   = var.chunk_size_bytes
  verify                             = var.verify
  report_prefix                      = var.report_prefix
  settings_ttl_seconds               = var.settings_ttl_seconds
  architecture                       = var.architecture
  function_memory_mb                 = var.function_memory_mb
  function_timeout_seconds           = var.function_timeout_seconds
  function_reserved_concurrency      = var.function_reserved_concurrency
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_event_age_seconds          = var.maximum_event_age_seconds
  tracing_mode                       = var.tracing_mode
  log_level                          = var.log_level
  log_retention_days                 = var.log_retention_days
  schedule_expression                = var.schedule_expression
  schedule_timezone                  = var.schedule_timezone
  schedule_enabled                   = var.schedule_enabled
  alarm_event_age_seconds            = var.alarm_event_age_seconds
  extra_alarm_actions                = var.extra_alarm_actions
  alarm_email_addresses              = var.alarm_email_addresses
  tags                               = var.tags
}
