# The seven functions and the environment each one reads (docs/design.md, "Environment variables").

locals {
  topics = module.messaging.arns

  common_environment = {
    AZS3COPY_LEDGER_TABLE        = module.ledger.name
    AZS3COPY_MAX_ATTEMPTS        = tostring(var.maximum_retry_attempts + 1)
    AZS3COPY_REPORT_PREFIX       = var.report_prefix
    POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
    POWERTOOLS_LOG_LEVEL         = var.log_level
  }

  # launch-qualification reads the whole secret at every launch; the functions that read Azure keep only its
  # credentials, for credentials_ttl_seconds.
  credentials_environment = {
    AZS3COPY_SECRET_ID       = module.secret.arn
    AZS3COPY_CREDENTIALS_TTL = tostring(var.credentials_ttl_seconds)
  }

  bucket_environment = {
    AZS3COPY_BUCKET     = module.storage.name
    AZS3COPY_KMS_KEY_ID = module.key.arn
  }

  functions = {
    launch-qualification = {
      description = "Reads the settings secret, starts a run and announces its containers"
      triggers    = {}
      environment = {
        AZS3COPY_SECRET_ID         = module.secret.arn
        POWERTOOLS_SERVICE_NAME    = "launch-qualification"
        AZS3COPY_TOPIC_FIND_BLOBS  = local.topics["find-blobs"]
        AZS3COPY_STALE_RUN_SECONDS = tostring(var.stale_run_seconds)
        # The run records the storage class its copies are written in (the secret's, else this default);
        # a class S3 serves only restored is refused while the copies are verified by reading them back.
        AZS3COPY_STORAGE_CLASS = var.storage_class
        AZS3COPY_VERIFY        = var.verify
      }
    }
    find-blobs = {
      description = "Lists one page of a container and routes each blob to the small or large path"
      triggers    = { find-blobs = local.topics["find-blobs"] }
      environment = merge(local.credentials_environment, local.bucket_environment, {
        POWERTOOLS_SERVICE_NAME              = "find-blobs"
        AZS3COPY_TOPIC_FIND_BLOBS            = local.topics["find-blobs"]
        AZS3COPY_TOPIC_DOWNLOAD              = local.topics["download"]
        AZS3COPY_TOPIC_LARGEFILE_INITIALIZER = local.topics["largefile-initializer"]
        AZS3COPY_LARGE_THRESHOLD             = tostring(var.large_threshold_bytes)
        AZS3COPY_LISTING_SHARDS              = tostring(var.listing_shards)
      })
    }
    download = {
      description = "Copies a batch of small blobs, one S3 object each, and verifies them"
      triggers    = { download = local.topics["download"] }
      environment = merge(local.credentials_environment, local.bucket_environment, {
        POWERTOOLS_SERVICE_NAME = "download"
        AZS3COPY_CHUNK_SIZE     = tostring(var.chunk_size_bytes)
        AZS3COPY_VERIFY         = var.verify
      })
    }
    largefile-initializer = {
      description = "Starts the multipart upload of a large blob and plans its parts"
      triggers    = { largefile-initializer = local.topics["largefile-initializer"] }
      environment = merge(local.bucket_environment, {
        POWERTOOLS_SERVICE_NAME         = "largefile-initializer"
        AZS3COPY_TOPIC_LARGEFILE_PARTER = local.topics["largefile-parter"]
        AZS3COPY_PART_SIZE              = tostring(var.part_size_bytes)
        AZS3COPY_VERIFY                 = var.verify # checksum: the object is written with its verified mark
        # The largest part the parter's memory holds (the rule of function_memory_mb): a blob that would
        # need larger parts is refused with the reason when its upload is planned.
        AZS3COPY_MAX_PART_SIZE = tostring(min(5368709120, floor((var.function_memory_mb.largefile_parter - 256) / 2) * 1048576))
      })
    }
    largefile-parter = {
      description = "Copies one part of a large blob (ranged read, UploadPart with CRC32)"
      triggers    = { largefile-parter = local.topics["largefile-parter"] }
      environment = merge(local.credentials_environment, local.bucket_environment, {
        POWERTOOLS_SERVICE_NAME               = "largefile-parter"
        AZS3COPY_TOPIC_LARGEFILE_RECOMBINATOR = local.topics["largefile-recombinator"]
      })
    }
    largefile-recombinator = {
      description = "Completes the multipart upload of a large blob and verifies the object"
      triggers    = { largefile-recombinator = local.topics["largefile-recombinator"] }
      environment = merge(local.bucket_environment, {
        POWERTOOLS_SERVICE_NAME               = "largefile-recombinator"
        AZS3COPY_VERIFY                       = var.verify
        AZS3COPY_TOPIC_LARGEFILE_RECOMBINATOR = local.topics["largefile-recombinator"] # continuations of a long read-back
      })
    }
    # Fed by Azure Event Grid through its function URL (no topic); reads the whole secret at every delivery.
    blob-events = {
      description = "Queues the blobs of Event Grid BlobCreated events on the copy path"
      triggers    = {}
      environment = merge(local.bucket_environment, {
        AZS3COPY_SECRET_ID                   = module.secret.arn
        POWERTOOLS_SERVICE_NAME              = "blob-events"
        AZS3COPY_TOPIC_DOWNLOAD              = local.topics["download"]
        AZS3COPY_TOPIC_LARGEFILE_INITIALIZER = local.topics["largefile-initializer"]
        AZS3COPY_LARGE_THRESHOLD             = tostring(var.large_threshold_bytes)
        # An events run records the storage class of its copies like a launched run.
        AZS3COPY_STORAGE_CLASS = var.storage_class
      })
    }
  }
}
