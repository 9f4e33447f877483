{{/* Names, labels and shared fragments of the mediaflow chart. */}}

{{- define "mediaflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: <release>-mediaflow, or the release name when it already contains the chart name. */}}
{{- define "mediaflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels of one component: stable across upgrades, so no version and never helm.sh/chart.
Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "mediaflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediaflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of an object of one component: the selector labels plus version, managed-by, part-of, chart. */}}
{{- define "mediaflow.labels" -}}
{{ include "mediaflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mediaflow
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mediaflow.operatorName" -}}
{{ include "mediaflow.fullname" . }}-operator
{{- end -}}

{{- define "mediaflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "mediaflow.operatorName" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{- define "mediaflow.minioName" -}}
{{ include "mediaflow.fullname" . }}-minio
{{- end -}}

{{- define "mediaflow.natsName" -}}
{{ include "mediaflow.fullname" . }}-nats
{{- end -}}

{{/* The storage Secret: storage.existingSecret or the generated one. */}}
{{- define "mediaflow.storageSecretName" -}}
{{- if .Values.storage.existingSecret -}}
{{ .Values.storage.existingSecret }}
{{- else -}}
{{ include "mediaflow.fullname" . }}-storage
{{- end -}}
{{- end -}}

{{/* host:port of MinIO for the generated storage Secret. */}}
{{- define "mediaflow.minioEndpoint" -}}
{{- if .Values.minio.enabled -}}
{{ include "mediaflow.minioName" . }}.{{ .Release.Namespace }}.svc:9000
{{- else if .Values.externalMinio.endpoint -}}
{{ .Values.externalMinio.endpoint }}
{{- else if not .Values.storage.existingSecret -}}
{{ fail "minio.enabled=false needs externalMinio.endpoint (or storage.existingSecret with an `endpoint` key)" }}
{{- end -}}
{{- end -}}

{{/* The operator's NATS URL: the bundled server or externalNats.url. */}}
{{- define "mediaflow.natsUrl" -}}
{{- if .Values.nats.enabled -}}
nats://{{ include "mediaflow.natsName" . }}.{{ .Release.Namespace }}.svc:4222
{{- else if .Values.externalNats.url -}}
{{ .Values.externalNats.url }}
{{- else -}}
{{ fail "nats.enabled=false needs externalNats.url (nats://host:port of a NATS server with JetStream)" }}
{{- end -}}
{{- end -}}

{{- define "mediaflow.image" -}}
{{ .image.repository }}:{{ default .ctx.Chart.AppVersion .image.tag }}
{{- end -}}

{{/*
The pod-level security context: restricted Pod Security profile, plus the
optional user/group values (null ones are left to the platform, e.g. OpenShift).
Call with the component's podSecurityContext values.
*/}}
{{- define "mediaflow.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- range $key := list "runAsUser" "runAsGroup" "fsGroup" }}
{{- if and (hasKey $ $key) (not (kindIs "invalid" (get $ $key))) }}
{{ $key }}: {{ int64 (get $ $key) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The container-level security context of every container of the chart. */}}
{{- define "mediaflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* storageClassName of a claim: "" = the default class (omitted), "-" = "" (no dynamic provisioning). */}}
{{- define "mediaflow.storageClass" -}}
{{- if eq . "-" }}
storageClassName: ""
{{- else if . }}
storageClassName: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Namespace of the helm test Workflow. */}}
{{- define "mediaflow.testNamespace" -}}
{{- if .Values.tests.namespace -}}
{{ .Values.tests.namespace }}
{{- else if .Values.rbac.namespaces -}}
{{ first .Values.rbac.namespaces }}
{{- else -}}
{{ .Release.Namespace }}
{{- end -}}
{{- end -}}
