output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alerts_topic_arn" {
  description = "ARN of the topic every alarm notifies: subscribe the on-call address to it."
  value       = aws_sns_topic.alerts.arn
}
