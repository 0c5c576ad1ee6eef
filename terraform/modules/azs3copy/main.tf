# The whole azs3copy system (docs/design.md): one key, the bucket, the ledger, the secret, a topic per hop,
# the two layers, the seven functions (blob-events behind a function URL), the schedule and the alarms and dashboard. Root configurations in
# terraform/envs/ call this module with their provider.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}")
  tags        = merge(var.tags, { "azs3copy:system" = var.name_prefix })

  memory_mb            = { for k, v in var.function_memory_mb : replace(k, "_", "-") => v }
  timeout_seconds      = { for k, v in var.function_timeout_seconds : replace(k, "_", "-") => v }
  reserved_concurrency = { for k, v in var.function_reserved_concurrency : replace(k, "_", "-") => v }
  # A step's event source mapping runs at most its reserved concurrency (more would be throttled, and a
  # throttled message counts as an attempt); a function without a reservation defaults to 100.
  maximum_concurrency = {
    for k, v in var.function_maximum_concurrency : replace(k, "_", "-") => v != null ? v : (
      local.reserved_concurrency[replace(k, "_", "-")] == -1 ? 100 : max(2, local.reserved_concurrency[replace(k, "_", "-")])
    )
  }
}

module "key" {
  source = "../key"

  name_prefix             = var.name_prefix
  deletion_window_in_days = var.kms_deletion_window_days
  tags                    = local.tags
}

module "storage" {
  source = "../storage"

  bucket_name                        = local.bucket_name
  kms_key_arn                        = module.key.arn
  versioning                         = var.bucket_versioning
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  abort_incomplete_multipart_days    = var.abort_incomplete_multipart_days
  force_destroy                      = var.bucket_force_destroy
  deny_insecure_transport            = var.bucket_deny_insecure_transport
  tags                               = local.tags
}

module "ledger" {
  source = "../ledger"

  table_name          = "${var.name_prefix}-ledger"
  kms_key_arn         = module.key.arn
  deletion_protection = var.ledger_deletion_protection
  tags                = local.tags
}

module "secret" {
  source = "../secret"

  secret_name             = var.name_prefix
  kms_key_arn             = module.key.arn
  begindate               = var.begindate
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = local.tags
}

module "messaging" {
  source = "../messaging"

  name_prefix = var.name_prefix
  kms_key_arn = module.key.arn
  tags        = local.tags
}

module "layers" {
  source = "../layers"

  name_prefix  = var.name_prefix
  runtime      = var.runtime
  architecture = var.architecture
  layers = {
    azure-sdk = {
      zip_path       = "${var.build_dir}/layers/azure-sdk.zip"
      built_for_path = "${var.build_dir}/layers/azure-sdk.json"
      description    = "azure-storage-blob, azure-identity, aws-lambda-powertools and their dependencies"
    }
    core = {
      zip_path    = "${var.build_dir}/layers/core.zip"
      description = "the azs3copy package"
    }
  }
}

module "function" {
  source   = "../function"
  for_each = local.functions

  name_prefix               = var.name_prefix
  name                      = each.key
  description               = each.value.description
  zip_path                  = "${var.build_dir}/functions/${each.key}.zip"
  runtime                   = var.runtime
  architecture              = var.architecture
  layer_arns                = [module.layers.arns["azure-sdk"], module.layers.arns["core"]]
  memory_mb                 = local.memory_mb[each.key]
  timeout_seconds           = local.timeout_seconds[each.key]
  reserved_concurrency      = local.reserved_concurrency[each.key]
  environment               = merge(local.common_environment, each.value.environment, var.function_extra_environment)
  policy_json               = local.policies[each.key]
  trigger_topic_arns        = each.value.triggers
  function_url              = each.key == "blob-events"
  maximum_concurrency       = lookup(local.maximum_concurrency, each.key, 2)
  max_receive_count         = var.maximum_retry_attempts + 1
  retry_delay_seconds       = var.retry_delay_seconds
  kms_key_arn               = module.key.arn
  tracing_mode              = var.tracing_mode
  log_retention_days        = var.log_retention_days
  maximum_retry_attempts    = var.maximum_retry_attempts
  maximum_event_age_seconds = var.maximum_event_age_seconds
  tags                      = local.tags
}

module "schedule" {
  source = "../schedule"

  name                = "${var.name_prefix}-run"
  schedule_expression = var.schedule_expression
  timezone            = var.schedule_timezone
  enabled             = var.schedule_enabled
  function_arn        = module.function["launch-qualification"].function_arn
  dlq_arn             = module.function["launch-qualification"].dlq_arn
  kms_key_arn         = module.key.arn
  tags                = local.tags
}

module "observability" {
  source = "../observability"

  name_prefix = var.name_prefix
  functions = {
    for name, f in module.function : name => {
      function_name = f.function_name
      dlq_name      = f.dlq_name
      queue_name    = f.queue_name
    }
  }
  metrics_namespace           = var.metrics_namespace
  kms_key_arn                 = module.key.arn
  extra_alarm_actions         = var.extra_alarm_actions
  alarm_email_addresses       = var.alarm_email_addresses
  event_age_threshold_seconds = var.alarm_event_age_seconds
  tags                        = local.tags
}
