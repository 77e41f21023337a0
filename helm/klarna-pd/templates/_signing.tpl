{{/*
Model signatures (python -m klarna_pd.store keygen; README "Model integrity"): the public key that
models must be signed with, from a Secret mounted read-only, for the init container's pull and the
server's load. Without a key and without allowUnsigned every model is refused.
*/}}
{{- define "klarna-pd.signingEnv" -}}
{{- if .Values.modelSigning.existingSecret }}
- name: KLARNA_PD_VERIFY_KEY
  value: /etc/klarna-pd/signing/{{ .Values.modelSigning.secretKey }}
{{- end }}
{{- if .Values.modelSigning.allowUnsigned }}
- name: KLARNA_PD_ALLOW_UNSIGNED
  value: "true"
{{- end }}
{{- end }}

{{- define "klarna-pd.signingMount" -}}
{{- if .Values.modelSigning.existingSecret }}
- name: model-verify-key
  mountPath: /etc/klarna-pd/signing
  readOnly: true
{{- end }}
{{- end }}

{{- define "klarna-pd.signingVolume" -}}
{{- if .Values.modelSigning.existingSecret }}
- name: model-verify-key
  secret:
    secretName: {{ .Values.modelSigning.existingSecret }}
    defaultMode: 0444
    items:
      - key: {{ .Values.modelSigning.secretKey }}
        path: {{ .Values.modelSigning.secretKey }}
{{- end }}
{{- end }}
