{{/* The chart's name, and the release's full name (63 characters at most, a DNS label). */}}
{{- define "llmgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmgw.fullname" -}}
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

{{/* Labels on every object; the selector labels are the stable subset. */}}
{{- define "llmgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmgw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "llmgw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmgw
{{- end }}

{{- define "llmgw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llmgw.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "llmgw.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The webhook's names: its Service, its TLS Secret and its configuration. */}}
{{- define "llmgw.webhookServiceName" -}}
{{- printf "%s-webhook" (include "llmgw.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmgw.webhookSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "llmgw.fullname" .)) .Values.webhook.tls.secretName }}
{{- end }}

{{/* The ValidatingWebhookConfiguration the operator creates and keeps up to date (kopf). */}}
{{- define "llmgw.webhookConfigurationName" -}}
validating.llmgateway.dev
{{- end }}

{{/* Whether a certificate Secret is mounted for the webhook (else the operator self-signs). */}}
{{- define "llmgw.webhookMountsCert" -}}
{{- if or .Values.webhook.certManager.enabled .Values.webhook.tls.secretName }}true{{ end }}
{{- end }}

{{/*
The operator's permissions, as RBAC rules. "cluster" rules are granted cluster-wide in
every mode: kopf lists and watches Namespaces and CRDs to find what to serve. "namespaced"
rules are granted by a ClusterRole when every namespace is watched, else by a Role in each
of .Values.watchNamespaces. A test derives the operator's API calls from its code and from
a recorded run, and checks that these rules allow each of them and nothing more.
*/}}
{{- define "llmgw.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- if .Values.webhook.enabled }}
# kopf creates the webhook configuration if absent, then patches its URL and CA bundle.
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations]
  verbs: [create]
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations]
  resourceNames: [{{ include "llmgw.webhookConfigurationName" . | quote }}]
  verbs: [patch]
{{- end }}
{{- end }}

{{- define "llmgw.namespacedRules" -}}
- apiGroups: [llmgateway.dev]
  resources: [llmproviders, fallbackchains, llmgateways]
  verbs: [list, watch]
- apiGroups: [llmgateway.dev]
  resources: [llmproviders/status, fallbackchains/status, llmgateways/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, watch, create, delete]
# The gateway's own pods (by label), to say why a rollout fails.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
# What a gateway owns with autoscaling, a disruption budget, spec.route and
# metrics.serviceMonitor (the last two only where the cluster has those CRDs).
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [list, watch, create, patch, delete]
# The generated master key of a gateway without spec.masterKeySecretRef: created once,
# never read, listed or watched.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
{{- if .Values.operator.watchSecretVersions }}
# --watch-secret-versions: Secrets' resourceVersions, for rolloutOnSecretChange. Still no
# get, but list and watch deliver whole Secrets, data included: the operator keeps only
# their resourceVersions and never reads the data.
- apiGroups: [""]
  resources: [secrets]
  verbs: [list, watch]
{{- end }}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.leaderElection.enabled }}
# Every replica watches the Lease (its renewals are the liveness heartbeat); kopf watches
# it wherever the operator watches.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [list, watch]
{{- end }}
{{- end }}

{{/* The Lease of leader election, in the release's namespace. */}}
{{- define "llmgw.leaseRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [{{ .Values.leaderElection.leaseName | quote }}]
  verbs: [get, update]
{{- end }}

{{/* `llmgw run`'s arguments. */}}
{{- define "llmgw.args" -}}
- --metrics-port={{ .Values.operator.metricsPort }}
- --health-port={{ .Values.operator.healthPort }}
- --settle-seconds={{ .Values.operator.settleSeconds }}
- --log-format={{ .Values.operator.logFormat }}
- --api-qps={{ .Values.operator.apiQPS }}
- --api-burst={{ .Values.operator.apiBurst | int64 }}
- --status-concurrency={{ .Values.operator.statusConcurrency | int64 }}
{{- if .Values.operator.verbose }}
- --verbose
{{- end }}
{{- if .Values.operator.watchSecretVersions }}
- --watch-secret-versions
{{- end }}
{{- if .Values.leaderElection.enabled }}
- --leader-election
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-name={{ .Values.leaderElection.leaseName }}
{{- end }}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- if .Values.webhook.enabled }}
- --webhook
- --webhook-port={{ .Values.webhook.port }}
- --webhook-host={{ include "llmgw.webhookServiceName" . }}.{{ .Release.Namespace }}.svc
- --webhook-failure-policy={{ .Values.webhook.failurePolicy }}
{{- if include "llmgw.webhookMountsCert" . }}
- --webhook-cert-dir=/etc/llmgw/webhook-tls
{{- end }}
{{- end }}
{{- range .Values.operator.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
