{{/* Object name prefix: the release name, or <release>-tern when the release name does not contain the chart's. */}}
{{- define "tern.fullname" -}}
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

{{- define "tern.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: tern
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tern.operator.name" -}}
{{- printf "%s-operator" (include "tern.fullname" .) -}}
{{- end -}}

{{- define "tern.operator.labels" -}}
{{ include "tern.labels" . }}
app.kubernetes.io/name: tern-operator
{{- end -}}

{{- define "tern.operator.selectorLabels" -}}
app.kubernetes.io/name: tern-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tern.operator.serviceAccountName" -}}
{{- default (include "tern.operator.name" .) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "tern.hypervisorNode.name" -}}
{{- printf "%s-hypervisor-node" (include "tern.fullname" .) -}}
{{- end -}}

{{- define "tern.hypervisorNode.labels" -}}
{{ include "tern.labels" . }}
app.kubernetes.io/name: tern-hypervisor-node
{{- end -}}

{{- define "tern.hypervisorNode.selectorLabels" -}}
app.kubernetes.io/name: tern-hypervisor-node
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tern.hypervisorNode.serviceAccountName" -}}
{{- default (include "tern.hypervisorNode.name" .) .Values.hypervisorNode.serviceAccount.name -}}
{{- end -}}

{{/* The image reference: repository@digest when image.digest is set, else repository:tag (default appVersion). */}}
{{- define "tern.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "tern.test.name" -}}
{{- printf "%s-test" (include "tern.fullname" .) -}}
{{- end -}}

{{/*
KUBERNETES_SERVICE_HOST/_PORT for the pods' Kubernetes clients when apiServer.host is set: they then reach the
apiserver at that address instead of the kubernetes Service's ClusterIP (which needs kube-proxy or a replacement).
The container's own env wins over the variables kubelet injects for Services.
*/}}
{{- define "tern.apiServerEnv" -}}
{{- if .Values.apiServer.host -}}
- name: KUBERNETES_SERVICE_HOST
  value: {{ .Values.apiServer.host | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.apiServer.port | quote }}
{{- end }}
{{- end -}}
