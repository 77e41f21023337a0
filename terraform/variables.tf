variable "region" {
  description = "AWS region of everything below."
  type        = string
  default     = "eu-north-1"
}

variable "name" {
  description = "Prefix of resource names."
  type        = string
  default     = "klarna-pd"
}

variable "cluster_version" {
  description = "EKS Kubernetes version (the Helm chart's manifests are validated against 1.35)."
  type        = string
  default     = "1.35"
}

variable "node_instance_types" {
  description = "Instance types of the managed node group (compute-optimised: serving is CPU-bound)."
  type        = list(string)
  default     = ["c7i.xlarge"]
}

variable "node_min_size" {
  description = "Fewest nodes; two, in two zones, for the chart's two-pod minimum."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Most nodes; 10 one-CPU pods (the HPA maximum) fit on 4 c7i.xlarge with headroom."
  type        = number
  default     = 5
}

variable "namespace" {
  description = "Namespace of the klarna-pd release (bound into the IRSA trust policy)."
  type        = string
  default     = "risk"
}

variable "service_account" {
  description = "ServiceAccount of the klarna-pd pods (the chart names it after the release)."
  type        = string
  default     = "klarna-pd"
}

variable "model_prefix" {
  description = "Key prefix of the models in the bucket; pods may read only below it."
  type        = string
  default     = "models"
}

variable "vpc_cidr" {
  description = "CIDR of the cluster's VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the EKS API; empty keeps the endpoint private."
  type        = list(string)
  default     = []
}
