{{/*
Rules between values that values.schema.json cannot state (it checks each value alone): a values
file that breaks one fails `helm install` with the reason, instead of rendering a pod that
crash-loops or an object the API server refuses. The two settings rules are klarna_pd/settings.py's
(Settings._check); tests/deploy/test_chart_env.py checks that both sides agree.
*/}}
{{/*
A Kubernetes quantity ("500m", "1", 1.5, "768Mi", "2G") as a plain number; fails on what the API
server would refuse. values.schema.json checks each quantity's form.
*/}}
{{- define "klarna-pd.quantity" -}}
{{- $q := toString .value | trim }}
{{- $num := regexFind "^[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?" $q }}
{{- $units := dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- $unit := trimPrefix $num $q }}
{{- if or (not $num) (not (hasKey $units $unit)) }}
{{- fail (printf "%s: expected a Kubernetes quantity such as 500m, 2, 768Mi or 1Gi, got %q" .name $q) }}
{{- end }}
{{- mulf (float64 $num) (get $units $unit) }}
{{- end }}

{{/*
A Prometheus duration ("30s", "1m30s", "500ms") in seconds.
*/}}
{{- define "klarna-pd.seconds" -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" (toString .) -1 }}
{{- $n := regexFind "^[0-9]+" . }}
{{- $total = addf $total (mulf (float64 $n) (get $units (trimPrefix $n .))) }}
{{- end }}
{{- $total }}
{{- end }}

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
{{- $res := .Values.resources }}
{{- $req := $res.requests | default dict }}
{{- $lim := $res.limits | default dict }}
{{- range $kind := list "cpu" "memory" }}
{{- if and (hasKey $req $kind) (hasKey $lim $kind) }}
{{- $r := include "klarna-pd.quantity" (dict "name" (printf "resources.requests.%s" $kind) "value" (get $req $kind)) | float64 }}
{{- $l := include "klarna-pd.quantity" (dict "name" (printf "resources.limits.%s" $kind) "value" (get $lim $kind)) | float64 }}
{{- if gt $r $l }}
{{- fail (printf "resources.requests.%s (%v) is more than resources.limits.%s (%v): Kubernetes refuses a request above its limit; raise the limit with the request" $kind (get $req $kind) $kind (get $lim $kind)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $workers := float64 $s.workers }}
{{- if hasKey $lim "cpu" }}
{{- $cpus := include "klarna-pd.quantity" (dict "name" "resources.limits.cpu" "value" $lim.cpu) | float64 }}
{{- if gt $workers (ceil $cpus) }}
{{- fail (printf "settings.workers (%s) is more than resources.limits.cpu (%v) can run: each worker is a process that scores on a CPU of its own, and the extra ones would be throttled; one worker per CPU" (include "klarna-pd.envValue" $s.workers) $lim.cpu) }}
{{- end }}
{{- end }}
{{- /* Without a CPU request Kubernetes takes the limit as the request: the HPA measures against it. */}}
{{- $requested := ternary (list "resources.requests.cpu" $req.cpu) (list "resources.limits.cpu" $lim.cpu) (hasKey $req "cpu") }}
{{- if and $a.enabled (index $requested 1) }}
{{- $cpus := include "klarna-pd.quantity" (dict "name" (index $requested 0) "value" (index $requested 1)) | float64 }}
{{- if le $cpus 0.0 }}
{{- fail (printf "%s is 0: the HPA scales on CPU use as a share of the request, so it needs one (one CPU per worker)" (index $requested 0)) }}
{{- end }}
{{- if lt (mulf 100.0 (divf $workers $cpus)) (float64 $a.targetCPUUtilizationPercentage) }}
{{- fail (printf "settings.workers (%s) use about one CPU each, at most %.0f%% of %s (%v): below autoscaling.targetCPUUtilizationPercentage (%v), the HPA would never add a pod; one worker per requested CPU" (include "klarna-pd.envValue" $s.workers) (mulf 100.0 (divf $workers $cpus)) (index $requested 0) (index $requested 1) $a.targetCPUUtilizationPercentage) }}
{{- end }}
{{- end }}
{{- $sm := .Values.monitoring.serviceMonitor }}
{{- if and $sm.enabled (gt (include "klarna-pd.seconds" $sm.scrapeTimeout | float64) (include "klarna-pd.seconds" $sm.interval | float64)) }}
{{- fail (printf "monitoring.serviceMonitor.scrapeTimeout (%s) is longer than its interval (%s): the Prometheus Operator skips such a ServiceMonitor and nothing is scraped" $sm.scrapeTimeout $sm.interval) }}
{{- end }}
{{- $np := .Values.networkPolicy }}
{{- if and $np.enabled $np.ingressFrom $sm.enabled (not $np.metricsFrom) }}
{{- fail (print "networkPolicy.ingressFrom admits only the listed sources, so Prometheus cannot scrape "
  "/metrics: list its pods in networkPolicy.metricsFrom (for example a namespaceSelector for the "
  "monitoring namespace)") }}
{{- end }}
{{- if $r.enabled }}
{{- if not $sm.enabled }}
{{- fail "monitoring.prometheusRule needs monitoring.serviceMonitor.enabled: its alerts select the series by the service label the ServiceMonitor's scrape sets, and would never fire" }}
{{- end }}
{{- if eq (float64 $s.driftWindow) 0.0 }}
{{- fail "monitoring.prometheusRule: settings.driftWindow is 0, so the server publishes no drift gauges and the alerts would never fire; keep a window (the default 10000) or disable the rule" }}
{{- end }}
{{- end }}
{{- with .Values.model.uri }}
{{- $path := trimPrefix "s3://" . }}
{{- if or (contains "//" $path) (contains "/./" $path) (contains "/../" $path) (hasSuffix "/." $path) (hasSuffix "/.." $path) (contains ".." (splitList "/" $path | first)) (not (regexMatch "^[^/]+(/[^/]+)*/[a-z0-9]([a-z0-9._-]*[a-z0-9])?/[a-z0-9]([a-z0-9._-]*[a-z0-9])?/?$" $path)) }}
{{- fail (printf "model.uri: expected s3://bucket/<prefix>/<name>/<version> as `python -m klarna_pd.store push` printed it (names between single slashes; name and version in lower case), got %q: the init container would refuse it and the pod never start" .) }}
{{- end }}
{{- end }}
{{- range $name := list "livenessProbe" "readinessProbe" "startupProbe" }}
{{- with $probe := index $.Values $name }}
{{- $handlers := list }}
{{- range $h := list "httpGet" "tcpSocket" "exec" "grpc" }}
{{- /* A null stays in the values when the chart's defaults lack the key (a layered -f file): not a handler. */}}
{{- if and (hasKey $probe $h) (not (kindIs "invalid" (index $probe $h))) }}{{ $handlers = append $handlers $h }}{{ end }}
{{- end }}
{{- if gt (len $handlers) 1 }}
{{- fail (printf "%s: a probe takes exactly one handler (httpGet, tcpSocket, exec or grpc), got %d (%s); values merge into the chart's httpGet, so to use another set %s.httpGet to null" $name (len $handlers) (join ", " $handlers) $name) }}
{{- else if eq (len $handlers) 0 }}
{{- fail (printf "%s: no handler left (httpGet, tcpSocket, exec or grpc); give one, or set %s itself to null to run without the probe" $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- $ing := .Values.ingress }}
{{- if and $ing.enabled (eq (toString (get ($ing.annotations | default dict) "alb.ingress.kubernetes.io/target-type")) "instance") (eq .Values.service.type "ClusterIP") }}
{{- fail "ingress: the ALB's target-type instance sends traffic to a node port, and service.type ClusterIP has none: the load balancer controller could not register targets; use target-type ip (the default here) or service.type NodePort" }}
{{- end }}
{{- if and $ing.enabled (eq (toString $ing.className) "alb") }}
{{- /* The server's routes (klarna_pd/serving/gateway.py; tests/deploy/test_chart.py keeps the two equal). */}}
{{- $served := list "/" "/predict" "/estimate-default-probability" "/metadata" "/metrics" "/livez" "/healthz" "/readyz" "/docs.json" "/docs" "/schema.json" }}
{{- range $i, $h := $ing.hosts }}
{{- range $j, $p := $h.paths }}
{{- if not (has (ternary "/" (trimSuffix "/" (toString $p.path)) (eq (toString $p.path) "/")) $served) }}
{{- fail (printf "ingress.hosts[%d].paths[%d].path %s: an ALB forwards the path as it came (it cannot rewrite it) and the server answers at / and its routes (/predict, /estimate-default-probability, probes, /metrics, docs), so every request there would get 404; route / (a host of its own), or one of the routes" $i $j $p.path) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) .Values.serviceAccount.annotations }}
{{- fail "serviceAccount.annotations are set but serviceAccount.create is false: the chart would drop them (an IRSA role-arn among them, and the pull from S3 would be denied); annotate the ServiceAccount you name in serviceAccount.name yourself" }}
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
