# What each function alone may do. The function module adds what all share: its own log group, its own
# dead-letter queue, the key, and metrics in the azs3copy namespace. No wildcard actions.

locals {
  objects = "${module.storage.arn}/*"
  reports = "${module.storage.arn}/${var.report_prefix}*"
  ledger  = module.ledger.arn

  # Every SNS-driven step: attempts, claims and states (UpdateItem, also inside TransactWriteItems), the
  # failure item of a blob not copied and the claim of a finished run's report (PutItem), a report claim let
  # go when the report could not be written (DeleteItem), the blob and run records (GetItem), the run's
  # counter shards and the failures listed in its report (Query).
  ledger_step = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]

  policies = {
    launch-qualification   = data.aws_iam_policy_document.launch_qualification.json
    find-blobs             = data.aws_iam_policy_document.find_blobs.json
    download               = data.aws_iam_policy_document.download.json
    largefile-initializer  = data.aws_iam_policy_document.largefile_initializer.json
    largefile-parter       = data.aws_iam_policy_document.largefile_parter.json
    largefile-recombinator = data.aws_iam_policy_document.largefile_recombinator.json
    blob-events            = data.aws_iam_policy_document.blob_events.json
  }
}

data "aws_iam_policy_document" "launch_qualification" {
  statement {
    sid       = "ReadSettings"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.secret.arn]
  }

  # A run starts in one transaction of Puts; taking over a stalled run checks, in the same transaction, that
  # its last progress is old enough (a ConditionCheck on its record and on each of its counter shards). A
  # retried launch reads the run it started (its record and counter shards: Query).
  statement {
    sid       = "StartRun"
    actions   = ["dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    resources = [local.ledger]
  }

  statement {
    sid       = "AnnounceContainers"
    actions   = ["sns:Publish"]
    resources = [local.topics["find-blobs"]]
  }
}

data "aws_iam_policy_document" "find_blobs" {
  statement {
    sid       = "ReadSettings"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.secret.arn]
  }

  statement {
    sid       = "ListDestination"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.arn]
  }

  # An object whose size matches is skipped only if it carries the verified mark for the blob's ETag: in its
  # metadata (HEAD: s3:GetObject), or, marked after a read-back, in its tags.
  statement {
    sid       = "ReadVerifiedMarks"
    actions   = ["s3:GetObject", "s3:GetObjectTagging"]
    resources = [local.objects]
  }

  statement {
    sid       = "WriteRunReport"
    actions   = ["s3:PutObject"]
    resources = [local.reports]
  }

  # Pages and blob items (PutItem, BatchGetItem), counter shards and failure items, and the run's report when
  # its listing settles the last blobs (the claim: PutItem, let go with DeleteItem).
  statement {
    sid = "RegisterBlobs"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [local.ledger]
  }

  statement {
    sid       = "RouteBlobs"
    actions   = ["sns:Publish"]
    resources = [local.topics["find-blobs"], local.topics["download"], local.topics["largefile-initializer"]]
  }
}

data "aws_iam_policy_document" "download" {
  statement {
    sid       = "ReadSettings"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.secret.arn]
  }

  # GetObjectTagging: a chunked blob whose completion answer was lost, and whose resend found the upload
  # gone, is taken as copied when the object there carries the verified mark (verify.completed_before), in its
  # metadata or, marked after a read-back, in its tags.
  statement {
    sid = "WriteAndVerifyObjects"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:GetObjectVersion",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
      "s3:PutObjectTagging",
      "s3:PutObjectVersionTagging",
    ]
    resources = [local.objects]
  }

  # A PutObject the SDK had to resend may have stored two versions: the earlier one is found and removed.
  statement {
    sid       = "FindResentVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [module.storage.arn]
  }

  # Never called: with it S3 answers a HEAD, GET or GetObjectTagging of a key that is not there with 404
  # (read as "no object"); without it, with 403, which reads as a permissions fault.
  statement {
    sid       = "TellMissingObjectsApart"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.arn]
  }

  statement {
    sid       = "RecordBlobStates"
    actions   = local.ledger_step
    resources = [local.ledger]
  }
}

data "aws_iam_policy_document" "largefile_initializer" {
  statement {
    sid = "StartMultipartUploads"
    # PutObjectTagging: CreateMultipartUpload also carries the blob's index tags (x-amz-tagging).
    actions   = ["s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectTagging"]
    resources = [local.objects]
  }

  statement {
    sid       = "PlanParts"
    actions   = local.ledger_step
    resources = [local.ledger]
  }

  statement {
    sid       = "AnnounceParts"
    actions   = ["sns:Publish"]
    resources = [local.topics["largefile-parter"]]
  }
}

data "aws_iam_policy_document" "largefile_parter" {
  statement {
    sid       = "ReadSettings"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.secret.arn]
  }

  statement {
    sid       = "UploadParts"
    actions   = ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"]
    resources = [local.objects]
  }

  statement {
    sid       = "RecordParts"
    actions   = local.ledger_step
    resources = [local.ledger]
  }

  statement {
    sid       = "AnnounceRecombine"
    actions   = ["sns:Publish"]
    resources = [local.topics["largefile-recombinator"]]
  }
}

data "aws_iam_policy_document" "largefile_recombinator" {
  statement {
    sid = "CompleteAndVerifyUploads"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:GetObjectVersion",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
      "s3:PutObjectTagging",
      "s3:PutObjectVersionTagging",
    ]
    resources = [local.objects]
  }

  # Never called: with it S3 answers a HEAD, GET or GetObjectTagging of a key that is not there with 404
  # (read as "no object"); without it, with 403, which reads as a permissions fault.
  statement {
    sid       = "TellMissingObjectsApart"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.arn]
  }

  statement {
    sid       = "RecordCompletion"
    actions   = local.ledger_step
    resources = [local.ledger]
  }

  # A read-back of a large object that needs more than one invocation continues in the next one.
  statement {
    sid       = "ContinueVerification"
    actions   = ["sns:Publish"]
    resources = [local.topics["largefile-recombinator"]]
  }
}

data "aws_iam_policy_document" "blob_events" {
  statement {
    sid       = "ReadSettings"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.secret.arn]
  }

  # A blob S3 holds verified at the ETag Azure reports now is not queued again: its verified mark is in the
  # object's metadata (HEAD: s3:GetObject) or, marked after a read-back, its tags. s3:ListBucket is never
  # called: with it S3 answers a HEAD of a key that is not there with 404 (no object), without it 403.
  statement {
    sid       = "ReadVerifiedMarks"
    actions   = ["s3:GetObject", "s3:GetObjectTagging"]
    resources = [local.objects]
  }

  statement {
    sid       = "TellMissingObjectsApart"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.arn]
  }

  # The first delivery of a day closes the day before's events run, whose report may then be written.
  statement {
    sid       = "WriteRunReport"
    actions   = ["s3:PutObject"]
    resources = [local.reports]
  }

  # The day's events run is opened with a transaction of Puts; its blobs are registered as find-blobs does.
  # Closing the day before's run takes its report claim, let go (DeleteItem) when the report cannot be written.
  statement {
    sid = "RecordEventsRun"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [local.ledger]
  }

  statement {
    sid       = "QueueBlobs"
    actions   = ["sns:Publish"]
    resources = [local.topics["download"], local.topics["largefile-initializer"]]
  }
}
