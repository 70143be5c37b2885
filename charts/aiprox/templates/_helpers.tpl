{{/* Names are cut to 63 characters: the longest a DNS label, and so a
Kubernetes name, may be. */}}
{{- define "aiprox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aiprox.fullname" -}}
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

{{/* One component's name: the full name cut so that "-<component>" still fits. */}}
{{- define "aiprox.component" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $room := sub 62 (len $component) | int }}
{{- printf "%s-%s" (include "aiprox.fullname" $root | trunc $room | trimSuffix "-") $component }}
{{- end }}

{{- define "aiprox.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aiprox.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: aiprox
{{- end }}

{{- define "aiprox.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "aiprox.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "aiprox.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "aiprox.secretName" -}}
{{- default (include "aiprox.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* A duration of aiprox.yaml ("30s", "2m", "1h") in whole seconds. */}}
{{- define "aiprox.seconds" -}}
{{- $d := toString . }}
{{- if regexMatch "^[0-9]+s$" $d }}{{ trimSuffix "s" $d | int }}
{{- else if regexMatch "^[0-9]+m$" $d }}{{ mul (trimSuffix "m" $d | int) 60 }}
{{- else if regexMatch "^[0-9]+h$" $d }}{{ mul (trimSuffix "h" $d | int) 3600 }}
{{- else }}{{ fail (printf "the duration %q: write it as whole seconds, minutes or hours (30s, 2m, 1h)" $d) }}
{{- end }}
{{- end }}

{{/* What every pod template shares: the annotations that roll it when the
configuration or the chart-made Secret changes. */}}
{{- define "aiprox.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A component's environment: the secrets it needs, by reference, never by
value (the gateway gets neither the admin token nor the database URL). */}}
{{- define "aiprox.env" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $needs := dict
  "gateway" (list "secretKey" "natsUrl")
  "logger" (list "databaseUrl" "natsUrl")
  "media" (list "natsUrl")
  "admin" (list "adminToken" "secretKey" "databaseUrl" "natsUrl") }}
{{- $vars := dict "adminToken" "AIPROX_ADMIN_TOKEN" "secretKey" "AIPROX_SECRET_KEY" "databaseUrl" "AIPROX_DATABASE_URL" "natsUrl" "AIPROX_NATS_URL" -}}
- name: AIPROX_CONFIG
  value: /etc/aiprox/aiprox.yaml
- name: AIPROX_OPS__LISTEN
  value: {{ printf "0.0.0.0:%v" $root.Values.ops.port | quote }}
{{- range $key := index $needs $component }}
- name: {{ index $vars $key }}
  valueFrom:
    secretKeyRef: {name: {{ include "aiprox.secretName" $root }}, key: {{ index $root.Values.secrets.keys $key }}}
{{- end }}
{{- with $root.Values.tracing }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | quote }}
- name: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
  value: {{ .captureContent | quote }}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.namespace.name=%s,k8s.pod.name=$(K8S_POD_NAME),service.namespace=%s" $root.Release.Namespace $root.Release.Name | quote }}
{{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Probes on the ops port: alive while the process runs; ready when its
connections are up (and, for the consumers, consuming). */}}
{{- define "aiprox.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: ops}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /healthz, port: ops}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: ops}
  periodSeconds: 5
  failureThreshold: 2
{{- end }}

{{/* The container fields every component shares. */}}
{{- define "aiprox.container" -}}
{{- $root := index . 0 }}
image: {{ include "aiprox.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
args: [{{ index . 1 | quote }}]
securityContext:
  {{- toYaml $root.Values.securityContext | nindent 2 }}
env:
  {{- include "aiprox.env" . | nindent 2 }}
{{- with $root.Values.extraEnvFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The pod fields every component shares. */}}
{{- define "aiprox.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
