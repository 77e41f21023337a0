data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first three zones are used (sliced below); a zone AWS adds later does not change them.
  state = "available"
}

data "aws_caller_identity" "current" {}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
}

module "vpc" {
  #checkov:skip=CKV_TF_1:Registry module pinned by version constraint and .terraform.lock.hcl; registry releases are immutable.
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.16"

  name            = var.name
  cidr            = var.vpc_cidr
  azs             = local.azs
  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  enable_nat_gateway   = true
  single_nat_gateway   = false
  enable_dns_hostnames = true

  enable_flow_log                      = true
  create_flow_log_cloudwatch_log_group = true
  create_flow_log_cloudwatch_iam_role  = true

  # Internal ALBs of the AWS Load Balancer Controller go to the private subnets.
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = 1 }
  public_subnet_tags  = { "kubernetes.io/role/elb" = 1 }
}

module "eks" {
  #checkov:skip=CKV_TF_1:Registry module pinned by version constraint and .terraform.lock.hcl; registry releases are immutable.
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.31"

  cluster_name    = var.name
  cluster_version = var.cluster_version

  cluster_endpoint_public_access       = length(var.cluster_endpoint_public_access_cidrs) > 0
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  cluster_endpoint_private_access      = true
  enable_irsa                          = true

  cluster_enabled_log_types = ["api", "audit", "authenticator"]
  cluster_addons = {
    coredns                = {}
    kube-proxy             = {}
    vpc-cni                = {}
    eks-pod-identity-agent = {}
  }

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  eks_managed_node_groups = {
    serving = {
      instance_types = var.node_instance_types
      min_size       = var.node_min_size
      max_size       = var.node_max_size
      desired_size   = var.node_min_size
      # IMDSv2 only; pods get AWS access through IRSA, not the node role.
      metadata_options = {
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
    }
  }

  enable_cluster_creator_admin_permissions = true
}

# Key policy of the project's KMS keys: the account administers them (the AWS default, stated
# explicitly); use is granted by IAM policies such as the model reader's.
data "aws_iam_policy_document" "kms_account_admin" {
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" is the key itself; account-root administration is AWS's default key policy.
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" is the key itself.
  #checkov:skip=CKV_AWS_109:Account-root administration of its own key is AWS's default key policy.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}
