output "bucket" {
  description = "Name of the destination bucket."
  value       = module.azs3copy.bucket
}

output "secret_id" {
  description = "ARN of the settings secret: put the Azure credentials and containers into it (docs/deploy.md)."
  value       = module.azs3copy.secret_id
}

output "ledger_table" {
  description = "Name of the DynamoDB ledger table."
  value       = module.azs3copy.ledger_table
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key: operators need kms:Decrypt on it to read the secret, queues, reports and function settings, and kms:GenerateDataKey to write the secret (docs/deploy.md, Operator permissions)."
  value       = module.azs3copy.kms_key_arn
}

output "topic_arns" {
  description = "SNS topic ARNs by hop."
  value       = module.azs3copy.topic_arns
}

output "function_names" {
  description = "Function names by directory name under lambdas/; invoke launch-qualification to start a run by hand."
  value       = module.azs3copy.function_names
}

output "queue_urls" {
  description = "URLs of the SQS queues the steps consume, by function directory name."
  value       = module.azs3copy.queue_urls
}

output "dlq_urls" {
  description = "Dead-letter queue URLs by function directory name: failed events wait there."
  value       = module.azs3copy.dlq_urls
}

output "schedule_name" {
  description = "Name of the EventBridge Scheduler schedule that starts runs."
  value       = module.azs3copy.schedule_name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.azs3copy.dashboard_name
}

output "alerts_topic_arn" {
  description = "Topic every alarm notifies: subscribe the on-call address to it."
  value       = module.azs3copy.alerts_topic_arn
}

output "events_url" {
  description = "Function URL of blob-events: the endpoint of the Event Grid subscription (docs/operating.md)."
  value       = module.azs3copy.events_url
}
