{{/* Chart name. */}}
{{- define "tierflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-tierflow unless the release name already contains it. */}}
{{- define "tierflow.fullname" -}}
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

{{- define "tierflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tierflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tierflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "tierflow.labels" -}}
helm.sh/chart: {{ include "tierflow.chart" . }}
{{ include "tierflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tierflow
{{- end }}

{{- define "tierflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tierflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tierflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tierflow.envoyImage" -}}
{{- printf "%s:%s" .Values.envoy.image.repository .Values.envoy.image.tag }}
{{- end }}

{{/* Name of the Secret holding the webhook serving certificate. */}}
{{- define "tierflow.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "tierflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tierflow.webhookServiceName" -}}
{{- printf "%s-webhook" (include "tierflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Namespaces the webhooks never touch. */}}
{{- define "tierflow.excludedNamespaces" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
    - kube-system
    - kube-node-lease
    - {{ .Release.Namespace | quote }}
{{- with .Values.webhook.namespaceSelectorExpressions }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Fails the render on values that cannot work. */}}
{{- define "tierflow.validate" -}}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) }}
{{- fail "webhook.failurePolicy must be Fail or Ignore" }}
{{- end }}
{{- if or (eq (int .Values.sidecar.runAsUser) 0) (eq (int .Values.envoy.runAsUser) 0) }}
{{- fail "sidecar.runAsUser and envoy.runAsUser must not be 0 (root)" }}
{{- end }}
{{- if ge (int .Values.webhook.generatedCertRenewDays) (int .Values.webhook.generatedCertDays) }}
{{- fail "webhook.generatedCertRenewDays must be less than webhook.generatedCertDays" }}
{{- end }}
{{- if eq (int .Values.sidecar.sharedGroup) 0 }}
{{- fail "sidecar.sharedGroup must not be 0 (root's group)" }}
{{- end }}
{{- if not (has .Values.envoy.healthAddress (list "::" "0.0.0.0")) }}
{{- fail "envoy.healthAddress must be \"::\" or \"0.0.0.0\"" }}
{{- end }}
{{- if eq (int .Values.sidecar.listenerPort) (int .Values.envoy.healthPort) }}
{{- fail "sidecar.listenerPort and envoy.healthPort must differ" }}
{{- end }}
{{- end }}

{{/*
The chart-generated webhook certificate. Reused across upgrades; renewed by the first `helm upgrade`
within webhook.generatedCertRenewDays of its expiry (and for a Secret of an older chart, which has
no expiry annotation). While renewing, the caBundle holds the new and the previous CA: the API
server trusts the controller both before and after the kubelet delivers the new Secret to it.
Input: dict "ctx" <root context> "existing" <the Secret from lookup, or empty>.
Output (YAML): caCert (the CA to store), caBundle, crt, key (base64) and notAfter (RFC 3339, UTC).
*/}}
{{- define "tierflow.webhookCert" -}}
{{- $ctx := .ctx }}
{{- $existing := .existing | default dict }}
{{- $days := int $ctx.Values.webhook.generatedCertDays }}
{{- $renewDays := int $ctx.Values.webhook.generatedCertRenewDays }}
{{- $format := "2006-01-02T15:04:05Z07:00" }}
{{- $data := $existing.data | default dict }}
{{- $notAfter := dig "metadata" "annotations" "tierflow.dev/not-after" "" $existing }}
{{- $renewBy := add (now | unixEpoch | int64) (mul $renewDays 86400) }}
{{- if and (index $data "ca.crt") $notAfter (gt (toDate $format $notAfter | unixEpoch | int64) $renewBy) }}
caCert: {{ index $data "ca.crt" | quote }}
caBundle: {{ index $data "ca.crt" | quote }}
crt: {{ index $data "tls.crt" | quote }}
key: {{ index $data "tls.key" | quote }}
notAfter: {{ $notAfter | quote }}
{{- else }}
{{- $fullname := include "tierflow.fullname" $ctx }}
{{- $svc := include "tierflow.webhookServiceName" $ctx }}
{{- $ns := $ctx.Release.Namespace }}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) }}
{{- $ca := genCA (printf "%s-webhook-ca" $fullname) $days }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns $days $ca }}
{{- $previous := "" }}
{{- if index $data "ca.crt" }}{{ $previous = index $data "ca.crt" | b64dec }}{{ end }}
caCert: {{ $ca.Cert | b64enc | quote }}
caBundle: {{ printf "%s%s" $ca.Cert $previous | b64enc | quote }}
crt: {{ $cert.Cert | b64enc | quote }}
key: {{ $cert.Key | b64enc | quote }}
notAfter: {{ dateInZone $format (now | dateModify (printf "+%dh" (mul $days 24))) "UTC" | quote }}
{{- end }}
{{- end }}
