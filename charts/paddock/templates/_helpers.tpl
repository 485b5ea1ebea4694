{{/* The release's base name: <release>-paddock, or <release> when it already says paddock. */}}
{{- define "paddock.fullname" -}}
{{- if contains "paddock" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-paddock" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "paddock.operatorName" -}}
{{- printf "%s-operator" (include "paddock.fullname" .) -}}
{{- end -}}

{{/* Labels on every object the chart renders: the e2e test finds orphans by them. */}}
{{- define "paddock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: paddock
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: paddock
{{- end -}}

{{- define "paddock.selectorLabels" -}}
app.kubernetes.io/name: paddock
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "paddock.serviceAccountName" -}}
{{- default (include "paddock.operatorName" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "paddock.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "paddock.auditClaimName" -}}
{{- default (printf "%s-audit" (include "paddock.fullname" .)) .Values.audit.file.existingClaim -}}
{{- end -}}

{{/* A map of labels as a key=value,... flag value, keys sorted. */}}
{{- define "paddock.matchLabelsFlag" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
