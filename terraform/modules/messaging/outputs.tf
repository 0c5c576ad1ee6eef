output "arns" {
  description = "Topic ARNs by the function each feeds (find-blobs, download, largefile-initializer, largefile-parter, largefile-recombinator)."
  value       = { for name, topic in aws_sns_topic.this : name => topic.arn }
}
