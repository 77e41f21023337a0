{{/*
Expand the name of the chart.
*/}}
{{- define "klarna-pd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "klarna-pd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "klarna-pd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "klarna-pd.labels" -}}
helm.sh/chart: {{ include "klarna-pd.chart" . }}
{{ include "klarna-pd.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "klarna-pd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "klarna-pd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the `helm test` pod (templates/tests/) that no pod of the Deployment carries: the
service's NetworkPolicy admits its pods by them when networkPolicy.ingressFrom restricts the rest.
*/}}
{{- define "klarna-pd.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "klarna-pd.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "klarna-pd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "klarna-pd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference.
*/}}
{{- define "klarna-pd.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Where a model pulled from S3 is put, inside the pod.
*/}}
{{- define "klarna-pd.modelDir" -}}
/var/lib/klarna-pd/model
{{- end }}

{{/*
The server's KLARNA_PD_* environment from .Values.settings: key maxBodyBytes becomes
KLARNA_PD_MAX_BODY_BYTES (klarna_pd/settings.py), each value rendered by its kind.
*/}}
{{- define "klarna-pd.settingsEnv" -}}
{{- range $key, $value := .Values.settings }}
- name: {{ printf "KLARNA_PD_%s" ($key | snakecase | upper) }}
  value: {{ include "klarna-pd.envValue" $value | quote }}
{{- end }}
{{- end }}

{{/*
A value as the text of an environment variable. Helm reads every number in values.yaml as a
float64, and Go prints a float64 of a million or more in exponent form ("1.6777216e+07"),
which no integer parser accepts: whole numbers are printed as integers. Lists are joined
with commas, the form Settings splits.
*/}}
{{- define "klarna-pd.envValue" -}}
{{- if kindIs "float64" . -}}
{{- if eq . (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else if kindIs "slice" . -}}
{{- join "," . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end }}
