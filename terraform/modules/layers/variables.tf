variable "name_prefix" {
  type        = string
  description = "Prefix of the layer names: <name_prefix>-<layer>."
}

variable "layers" {
  type = map(object({
    zip_path    = string
    description = string
  }))
  description = "Layers by short name: the zip built by make and a description."
}

variable "runtime" {
  type        = string
  description = "Lambda runtime the layers are built for."
}

variable "architecture" {
  type        = string
  description = "Lambda architecture the layers are built for (arm64 or x86_64)."
}
