{{/*
Rules between values that values.schema.json cannot state (it checks each value alone): a values
file that breaks one fails `helm install` with the reason, instead of rendering a pod that
crash-loops or an object the API server refuses. The two settings rules are klarna_pd/settings.py's
(Settings._check); tests/deploy/test_chart_env.py checks that both sides agree.
*/}}
{{- define "klarna-pd.validate" -}}
{{- $s := .Values.settings }}
{{- if lt (float64 $s.maxBatchSize) (float64 $s.batchMaxApplicants) }}
{{- fail (printf "settings.maxBatchSize (%s) must be at least settings.batchMaxApplicants (%s): the server refuses to start otherwise" (include "klarna-pd.envValue" $s.maxBatchSize) (include "klarna-pd.envValue" $s.batchMaxApplicants)) }}
{{- end }}
{{- if lt (float64 $s.maxInflightBytes) (float64 $s.maxBodyBytes) }}
{{- fail (printf "settings.maxInflightBytes (%s) must be at least settings.maxBodyBytes (%s): a worker must be able to hold one largest body" (include "klarna-pd.envValue" $s.maxInflightBytes) (include "klarna-pd.envValue" $s.maxBodyBytes)) }}
{{- end }}
{{- $a := .Values.autoscaling }}
{{- if and $a.enabled (gt (float64 $a.minReplicas) (float64 $a.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%s) must not exceed autoscaling.maxReplicas (%s)" (include "klarna-pd.envValue" $a.minReplicas) (include "klarna-pd.envValue" $a.maxReplicas)) }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if $pdb.enabled }}
{{- $fewest := ternary $a.minReplicas .Values.replicaCount $a.enabled | float64 }}
{{- $from := ternary "autoscaling.minReplicas" "replicaCount" $a.enabled }}
{{- $keep := toString $pdb.minAvailable }}
{{- $kept := ternary (ceil (divf (mulf $fewest (trimSuffix "%" $keep | float64)) 100.0)) (float64 $keep) (hasSuffix "%" $keep) }}
{{- if and (gt $kept 0.0) (ge $kept $fewest) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%s) keeps every pod of the fewest the Deployment may run (%s %s): a node drain or cluster upgrade could never evict one; run more replicas, lower minAvailable, or disable the budget" $keep $from (include "klarna-pd.envValue" $fewest)) }}
{{- end }}
{{- end }}
{{- if ge (float64 .Values.preStopSleepSeconds) (float64 .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "preStopSleepSeconds (%s) must be less than terminationGracePeriodSeconds (%s): the pod would be killed before it drains its requests" (include "klarna-pd.envValue" .Values.preStopSleepSeconds) (include "klarna-pd.envValue" .Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- $st := .Values.strategy | default dict }}
{{- if eq (toString ($st.type | default "RollingUpdate")) "RollingUpdate" }}
{{- $ru := $st.rollingUpdate | default dict }}
{{- if and (hasKey $ru "maxSurge") (hasKey $ru "maxUnavailable") (has (toString $ru.maxSurge) (list "0" "0%")) (has (toString $ru.maxUnavailable) (list "0" "0%")) }}
{{- fail "strategy.rollingUpdate: maxSurge and maxUnavailable are both 0, so a rolling update could never replace a pod; make maxSurge at least 1" }}
{{- end }}
{{- end }}
{{- $r := .Values.monitoring.prometheusRule }}
{{- if and $r.enabled (ge (float64 $r.psiWatch) (float64 $r.psiAct)) }}
{{- fail (printf "monitoring.prometheusRule.psiWatch (%v) must be below psiAct (%v)" $r.psiWatch $r.psiAct) }}
{{- end }}
{{- range $key, $_ := .Values.podLabels }}
{{- if hasKey (include "klarna-pd.labels" $ | fromYaml) $key }}
{{- fail (printf "podLabels: %s is one of the chart's own labels (the Deployment selects its pods by two of them); use another label" $key) }}
{{- end }}
{{- end }}
{{- range $i, $c := .Values.topologySpreadConstraints }}
{{- if hasKey $c "labelSelector" }}
{{- fail (printf "topologySpreadConstraints[%d].labelSelector: the chart sets it to the pods' selector labels; leave it out" $i) }}
{{- end }}
{{- end }}
{{- if and (not .Values.modelSigning.existingSecret) (not .Values.modelSigning.allowUnsigned) }}
{{- fail "modelSigning: no existingSecret with the public key and allowUnsigned is false, so the server would refuse every model and never become ready; name the Secret holding the key (python -m klarna_pd.store keygen), or set allowUnsigned: true on a development cluster" }}
{{- end }}
{{- end }}
