output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "dlq_url" {
  description = "URL of the function's dead-letter queue (its queue's redrive target, its on-failure destination, and where it puts blobs failed for good)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the function's dead-letter (on-failure) queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the function's dead-letter (on-failure) queue."
  value       = aws_sqs_queue.dlq.name
}

output "function_url" {
  description = "The function's URL (null without var.function_url)."
  value       = var.function_url ? aws_lambda_function_url.this[0].function_url : null
}

output "queue_url" {
  description = "URL of the SQS queue the function consumes (null for a function without one)."
  value       = local.queued ? aws_sqs_queue.this[0].url : null
}

output "queue_arn" {
  description = "ARN of the SQS queue the function consumes (null for a function without one)."
  value       = local.queued ? aws_sqs_queue.this[0].arn : null
}

output "queue_name" {
  description = "Name of the SQS queue the function consumes (null for a function without one)."
  value       = local.queued ? aws_sqs_queue.this[0].name : null
}
