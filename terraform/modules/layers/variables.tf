variable "name_prefix" {
  type        = string
  description = "Prefix of the layer names: <name_prefix>-<layer>."
}

variable "layers" {
  type = map(object({
    zip_path       = string
    description    = string
    built_for_path = optional(string)
  }))
  description = "Layers by short name: the zip built by make, a description and, for a layer with compiled code, the JSON that make writes beside the zip naming the architecture and Python version it was built for (checked against architecture and runtime at plan)."
}

variable "runtime" {
  type        = string
  description = "Lambda runtime the layers are built for."
}

variable "architecture" {
  type        = string
  description = "Lambda architecture the layers are built for (arm64 or x86_64)."
}
