{{/* Names and labels shared by every template. */}}

{{- define "amity.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "amity.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "amity.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "amity.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "amity.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "amity.selectorLabels" -}}
app.kubernetes.io/name: {{ include "amity.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "amity.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "amity.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "amity.secretName" -}}
{{- default (printf "%s-auth" (include "amity.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "amity.coordinatorUrl" -}}
{{- printf "http://%s-coordinator:%v" (include "amity.fullname" .) .Values.coordinator.service.port -}}
{{- end -}}

{{/* The API token from the Secret, for every pod that calls the coordinator. */}}
{{- define "amity.tokenEnv" -}}
- name: AMITY_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "amity.secretName" . }}
      key: api-token
{{- end -}}
