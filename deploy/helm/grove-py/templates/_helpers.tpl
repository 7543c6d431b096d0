{{/* Names and labels shared by every template. */}}
{{- define "grove-py.operatorName" -}}{{ .Release.Name }}-operator{{- end -}}
{{- define "grove-py.driverName" -}}{{ .Release.Name }}-dra-driver{{- end -}}

{{- define "grove-py.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "grove-py.labels" -}}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: grove-py
{{- end -}}

{{- define "grove-py.operatorSelector" -}}
app.kubernetes.io/name: grove-py-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "grove-py.driverSelector" -}}
app.kubernetes.io/name: grove-py-dra-driver
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "grove-py.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}
