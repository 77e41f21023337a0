output "region" {
  description = "AWS region."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "ecr_repository_url" {
  description = "Where to push the Bento image; the chart's image.repository."
  value       = aws_ecr_repository.service.repository_url
}

output "model_bucket" {
  description = "Bucket of the models: python -m klarna_pd.store push TAG s3://<bucket>/models."
  value       = aws_s3_bucket.models.bucket
}

output "model_reader_role_arn" {
  description = "IRSA role of the pods: the chart's serviceAccount.annotations eks.amazonaws.com/role-arn."
  value       = aws_iam_role.model_reader.arn
}

output "model_pusher_policy_arn" {
  description = "IAM policy for the role that pushes models (python -m klarna_pd.store push): attach it to the release job's role."
  value       = aws_iam_policy.model_pusher.arn
}
