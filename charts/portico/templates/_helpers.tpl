{{- define "portico.name" -}}{{ .Release.Name }}{{- end }}
{{- define "portico.operator" -}}{{ .Release.Name }}-operator{{- end }}
{{- define "portico.labels" -}}
app.kubernetes.io/name: portico
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "portico.operatorSelector" -}}
app.kubernetes.io/name: portico
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}
{{- define "portico.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end }}
{{- /* The webhook configurations' annotations: cert-manager's CA injection with webhook.tls=certManager. */}}
{{- define "portico.webhookAnnotations" -}}
{{- if eq .Values.webhook.tls "certManager" -}}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "portico.operator" . }}-webhook
{{- end -}}
{{- end }}
{{- /* The dashboard: its name (Deployment, Service, ConfigMap), pod labels and service account. */}}
{{- define "portico.dashboard" -}}{{ .Release.Name }}-dashboard{{- end }}
{{- define "portico.dashboardSelector" -}}
app.kubernetes.io/name: portico
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end }}
{{- define "portico.dashboardServiceAccount" -}}
{{- .Values.dashboard.serviceAccount.name | default (include "portico.dashboard" .) }}
{{- end }}
{{- /* The host of dashboard.publicUrl, for an Ingress or HTTPRoute that names no host. */}}
{{- define "portico.dashboardHost" -}}
{{- (urlParse (required "dashboard.publicUrl is required" .Values.dashboard.publicUrl)).hostname }}
{{- end }}
{{- /*
Topology spread constraints with the pods' labels as the labelSelector of
those that set none. Call with (dict "constraints" LIST "labels" YAML-TEXT).
*/}}
{{- define "portico.topologySpread" -}}
{{- $out := list }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (fromYaml $.labels)) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}
