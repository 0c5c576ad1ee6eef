locals {
  region = data.aws_region.current.name
  names  = [for f in values(var.functions) : f.function_name]

  # Metrics the functions emit (Powertools, EMF) into var.metrics_namespace: BytesCopied and one
  # Blobs_<state> count per terminal state of the ledger (azs3copy.lambda_support).
  states        = ["copied", "skipped", "failed", "changed", "vanished", "needs-rehydration"]
  state_metrics = [for state in local.states : "Blobs_${state}"]

  lambda_metric = {
    for stat_metric in ["Invocations", "Errors", "Duration", "Throttles"] :
    stat_metric => [for name in local.names : ["AWS/Lambda", stat_metric, "FunctionName", name]]
  }

  widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Throughput: bytes copied per 5 minutes"
        region = local.region
        stat   = "Sum"
        period = 300
        metrics = [
          [{ expression = "SEARCH('Namespace=\"${var.metrics_namespace}\" MetricName=\"BytesCopied\"', 'Sum', 300)", id = "bytes", label = "bytes copied" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Blobs by terminal state"
        region = local.region
        stat   = "Sum"
        period = 300
        metrics = [
          [{ expression = "SEARCH('Namespace=\"${var.metrics_namespace}\" MetricName=(${join(" OR ", [for m in local.state_metrics : "\"${m}\""])})', 'Sum', 300)", id = "states", label = "" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title   = "Invocations"
        region  = local.region
        stat    = "Sum"
        period  = 300
        metrics = local.lambda_metric["Invocations"]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title   = "Errors and throttles"
        region  = local.region
        stat    = "Sum"
        period  = 300
        metrics = concat(local.lambda_metric["Errors"], local.lambda_metric["Throttles"])
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 12, height = 6
      properties = {
        title   = "Duration (p95, ms)"
        region  = local.region
        stat    = "p95"
        period  = 300
        metrics = local.lambda_metric["Duration"]
      }
    },
    {
      type = "metric", x = 12, y = 12, width = 12, height = 6
      properties = {
        title   = "Dead-letter queues: events waiting"
        region  = local.region
        stat    = "Maximum"
        period  = 300
        metrics = [for f in values(var.functions) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f.dlq_name]]
      }
    },
    {
      type = "metric", x = 0, y = 18, width = 12, height = 6
      properties = {
        title   = "Step queues: messages waiting"
        region  = local.region
        stat    = "Maximum"
        period  = 300
        metrics = [for f in values(var.functions) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f.queue_name] if f.queue_name != null]
      }
    },
    {
      type = "metric", x = 12, y = 18, width = 12, height = 6
      properties = {
        title   = "Step queues: age of the oldest message (s)"
        region  = local.region
        stat    = "Maximum"
        period  = 300
        metrics = [for f in values(var.functions) : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", f.queue_name] if f.queue_name != null]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({ widgets = local.widgets })
}
