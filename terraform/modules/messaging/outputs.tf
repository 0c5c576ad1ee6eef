output "arns" {
  description = "Topic ARNs by short name (containers, small-blobs, large-blobs, parts, recombine)."
  value       = { for name, topic in aws_sns_topic.this : name => topic.arn }
}
