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

# What the release job that runs `python -m klarna_pd.store push` needs (README, deploy step 6):
# write new versions under the prefix, read a version's manifest first (a pushed version is never
# replaced) and list the bucket: a push checks the bucket first (HeadBucket is s3:ListBucket), and
# without it S3 answers the missing manifest of a new version with 403 instead of 404. No
# s3:DeleteObject: releases are kept (the bucket is versioned). Attach it to the CI's role.
data "aws_iam_policy_document" "model_pusher" {
  statement {
    sid       = "WriteModels"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.models.arn}/${var.model_prefix}/*"]
  }
  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.models.arn]
  }
  statement {
    sid       = "EncryptModels"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.models.arn]
  }
}

resource "aws_iam_policy" "model_pusher" {
  name        = "${var.name}-model-pusher"
  description = "Push klarna-pd models to the model bucket (python -m klarna_pd.store push)."
  policy      = data.aws_iam_policy_document.model_pusher.json
}
