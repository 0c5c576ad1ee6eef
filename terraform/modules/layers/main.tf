# The two layers (design.md), built by `make layers` into reproducible zips and referenced by their hash.

locals {
  # What each layer's wheels were built for, from the <layer>.json that `make layers` writes beside the zip;
  # null for layers without one (pure Python) and when the file is missing.
  built_for = {
    for name, layer in var.layers : name => try(jsondecode(file(layer.built_for_path)), null)
    if layer.built_for_path != null
  }
}

resource "aws_lambda_layer_version" "this" {
  for_each = var.layers

  layer_name               = "${var.name_prefix}-${each.key}"
  description              = each.value.description
  filename                 = each.value.zip_path
  source_code_hash         = filebase64sha256(each.value.zip_path)
  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]

  lifecycle {
    # Wheels for another architecture or Python version install fine and fail at import on Lambda.
    precondition {
      condition = each.value.built_for_path == null || try(
        local.built_for[each.key].architecture == var.architecture
        && "python${local.built_for[each.key].python_version}" == var.runtime,
        false
      )
      error_message = join("", [
        "${each.value.zip_path} was built for ",
        try("${local.built_for[each.key].architecture} and Python ${local.built_for[each.key].python_version}", "an unknown platform (no readable ${coalesce(each.value.built_for_path, "-")})"),
        ", but the functions run on ${var.architecture} and ${var.runtime}: rebuild it with",
        " `make layers LAMBDA_ARCH=${var.architecture} LAMBDA_PYTHON=${trimprefix(var.runtime, "python")}`",
        " (or set architecture and runtime to what it was built for).",
      ])
    }
  }
}
