# The two layers (design.md), built by `make layers` into reproducible zips and referenced by their hash.

resource "aws_lambda_layer_version" "this" {
  for_each = var.layers

  layer_name               = "${var.name_prefix}-${each.key}"
  description              = each.value.description
  filename                 = each.value.zip_path
  source_code_hash         = filebase64sha256(each.value.zip_path)
  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]
}
