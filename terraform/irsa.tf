# The role the klarna-pd pods assume (IRSA): read-only on the model prefix, nothing else.
data "aws_iam_policy_document" "model_reader_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "model_reader" {
  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.models.arn}/${var.model_prefix}/*"]
  }
  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.models.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.model_prefix}/*"]
    }
  }
  statement {
    sid       = "DecryptModels"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.models.arn]
  }
}

resource "aws_iam_role" "model_reader" {
  name               = "${var.name}-model-reader"
  assume_role_policy = data.aws_iam_policy_document.model_reader_trust.json
}

resource "aws_iam_role_policy" "model_reader" {
  name   = "read-models"
  role   = aws_iam_role.model_reader.id
  policy = data.aws_iam_policy_document.model_reader.json
}
