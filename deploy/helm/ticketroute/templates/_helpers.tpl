{{/* Names, labels and the shared pieces of the Deployments. */}}

{{/*
The services, one Deployment (and Service, PodDisruptionBudget...) each; their values are the
section of the same name. A list in JSON: fromJsonArray (include "ticketroute.components" .).
*/}}
{{- define "ticketroute.components" -}}
["enricher", "router", "tracker"]
{{- end -}}

{{- define "ticketroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ticketroute.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one service's resources: <fullname>-<component>, within 63 characters. */}}
{{- define "ticketroute.componentName" -}}
{{- printf "%s-%s" (include "ticketroute.fullname" .root | trunc 54 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "ticketroute.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ticketroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ticketroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ticketroute.labels" -}}
helm.sh/chart: {{ include "ticketroute.chart" . }}
{{ include "ticketroute.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ticketroute
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "component" "enricher"). */}}
{{- define "ticketroute.componentSelectorLabels" -}}
{{ include "ticketroute.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ticketroute.componentLabels" -}}
{{ include "ticketroute.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Labels of one service's pods: without the chart's version (helm.sh/chart) nor the app's (the
image says which runs), so an upgrade that changes nothing in the pod restarts no pod; each
restart rebalances the service's consumer group. The checksum annotations hash only the data
of the ConfigMap and Secret, for the same reason.
*/}}
{{- define "ticketroute.podLabels" -}}
{{ include "ticketroute.componentSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ticketroute
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ticketroute.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ticketroute.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ticketroute.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding Kafka credentials and TLS material: the user's, or the chart's. */}}
{{- define "ticketroute.kafkaSecretName" -}}
{{- if .Values.kafka.existingSecret.name -}}
{{- .Values.kafka.existingSecret.name -}}
{{- else -}}
{{- printf "%s-kafka" (include "ticketroute.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "ticketroute.saslEnabled" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol -}}true{{- end -}}
{{- end -}}

{{- define "ticketroute.tlsEnabled" -}}
{{- if hasSuffix "SSL" .Values.kafka.securityProtocol -}}true{{- end -}}
{{- end -}}

{{/*
The Secret keys of the TLS files to mount, as "filename=key" lines: ca.crt, tls.crt, tls.key.
Empty when the protocol uses no TLS or there is nothing to mount.
*/}}
{{- define "ticketroute.tlsFiles" -}}
{{- if include "ticketroute.tlsEnabled" . -}}
{{- $k := .Values.kafka -}}
{{- if $k.existingSecret.name -}}
{{- with $k.existingSecret.caCertKey }}ca.crt={{ . }}{{ "\n" }}{{ end -}}
{{- if $k.existingSecret.clientCertKey }}tls.crt={{ $k.existingSecret.clientCertKey }}{{ "\n" }}tls.key={{ $k.existingSecret.clientKeyKey }}{{ "\n" }}{{ end -}}
{{- else -}}
{{- if $k.tls.caCert }}ca.crt=ca.crt{{ "\n" }}{{ end -}}
{{- if $k.tls.clientCert }}tls.crt=tls.crt{{ "\n" }}tls.key=tls.key{{ "\n" }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ticketroute.tlsDir" -}}/etc/ticketroute/kafka-tls{{- end -}}
{{- define "ticketroute.catalogDir" -}}/etc/ticketroute/catalog{{- end -}}

{{/*
Checks the services would otherwise only make at start (CrashLoopBackOff), made at render time.
*/}}
{{- define "ticketroute.validate" -}}
{{- $v := .Values -}}
{{- if include "ticketroute.saslEnabled" . -}}
{{- if not (and $v.kafka.sasl.mechanism $v.kafka.sasl.username) -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.mechanism and kafka.sasl.username" $v.kafka.securityProtocol) -}}
{{- end -}}
{{- if not (or $v.kafka.existingSecret.name $v.kafka.sasl.password) -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.password or kafka.existingSecret.name" $v.kafka.securityProtocol) -}}
{{- end -}}
{{- end -}}
{{- if $v.kafka.existingSecret.name -}}
{{- if ne (not $v.kafka.existingSecret.clientCertKey) (not $v.kafka.existingSecret.clientKeyKey) -}}
{{- fail "set kafka.existingSecret.clientCertKey and kafka.existingSecret.clientKeyKey together" -}}
{{- end -}}
{{- else if ne (not $v.kafka.tls.clientCert) (not $v.kafka.tls.clientKey) -}}
{{- fail "set kafka.tls.clientCert and kafka.tls.clientKey together" -}}
{{- end -}}
{{- if gt (mul 3 (int64 $v.consumer.heartbeatIntervalMs)) (int64 $v.consumer.sessionTimeoutMs) -}}
{{- fail "consumer.heartbeatIntervalMs must be at most consumer.sessionTimeoutMs / 3" -}}
{{- end -}}
{{- range $component := include "ticketroute.components" . | fromJsonArray -}}
{{- $c := index $v $component -}}
{{- if $c.autoscaling.enabled -}}
{{- if gt (int64 $c.autoscaling.maxReplicas) (int64 $v.topics.partitions) -}}
{{- fail (printf "%s.autoscaling.maxReplicas (%v) exceeds topics.partitions (%v): consumers above the partition count sit idle" $component $c.autoscaling.maxReplicas $v.topics.partitions) -}}
{{- end -}}
{{- if gt (int64 $c.autoscaling.minReplicas) (int64 $c.autoscaling.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas exceeds its maxReplicas" $component) -}}
{{- end -}}
{{- else if gt (int64 $c.replicas) (int64 $v.topics.partitions) -}}
{{- fail (printf "%s.replicas (%v) exceeds topics.partitions (%v): consumers above the partition count sit idle" $component $c.replicas $v.topics.partitions) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Kafka ports: those of the bootstrap servers plus networkPolicy.kafka.extraPorts. */}}
{{- define "ticketroute.kafkaPorts" -}}
{{- $ports := list -}}
{{- range $server := splitList "," .Values.kafka.bootstrapServers -}}
{{- $server = trim $server -}}
{{- if $server -}}
{{- $parts := splitList ":" $server -}}
{{- $port := last $parts -}}
{{- if or (lt (len $parts) 2) (not (regexMatch "^[0-9]{1,5}$" $port)) -}}
{{- fail (printf "kafka.bootstrapServers: %q is not host:port" $server) -}}
{{- end -}}
{{- $ports = append $ports (int $port) -}}
{{- end -}}
{{- end -}}
{{- range .Values.networkPolicy.kafka.extraPorts -}}
{{- $ports = append $ports (int .) -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}

{{/*
The env block of one service: every entry is one field of its settings class
(services/runtime/settings.py), upper-cased. Optional settings left empty are not set, so the
services' own defaults (None) apply: an empty string would not validate.
*/}}
{{- define "ticketroute.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $c := index $v .component -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required (host:port[,host:port...])" $v.kafka.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if include "ticketroute.saslEnabled" $root }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $v.kafka.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "ticketroute.kafkaSecretName" $root }}
      key: {{ ternary $v.kafka.existingSecret.saslPasswordKey "sasl-password" (not (empty $v.kafka.existingSecret.name)) }}
{{- end }}
{{- range $line := splitList "\n" (include "ticketroute.tlsFiles" $root) }}
{{- if $line }}
{{- $file := first (splitList "=" $line) }}
- name: {{ get (dict "ca.crt" "KAFKA_SSL_CAFILE" "tls.crt" "KAFKA_SSL_CERTFILE" "tls.key" "KAFKA_SSL_KEYFILE") $file }}
  value: {{ printf "%s/%s" (include "ticketroute.tlsDir" $root) $file | quote }}
{{- end }}
{{- end }}
- name: KAFKA_CLIENT_ID
  value: {{ $v.kafka.clientId | quote }}
- name: KAFKA_MAX_REQUEST_SIZE
  value: {{ $v.kafka.maxRequestSize | int64 | quote }}
- name: TOPIC_INCOMING
  value: {{ $v.topics.incoming | quote }}
- name: TOPIC_ENRICHED
  value: {{ $v.topics.enriched | quote }}
- name: TOPIC_REDHAT
  value: {{ $v.topics.redhat | quote }}
- name: TOPIC_PARTNER_PREFIX
  value: {{ $v.topics.partnerPrefix | quote }}
- name: TOPIC_RESPONSES_PARTNER_PREFIX
  value: {{ $v.topics.responsesPartnerPrefix | quote }}
- name: TOPIC_TSANET
  value: {{ $v.topics.tsanet | quote }}
- name: TOPIC_SLA
  value: {{ $v.topics.sla | quote }}
- name: TOPIC_DEADLETTER
  value: {{ $v.topics.deadletter | quote }}
- name: TOPIC_PARTITIONS
  value: {{ $v.topics.partitions | int64 | quote }}
- name: TOPIC_REPLICATION_FACTOR
  value: {{ $v.topics.replicationFactor | int64 | quote }}
- name: TOPIC_CREATE
  value: {{ $v.topics.create | quote }}
- name: BATCH_MAX_RECORDS
  value: {{ $v.consumer.batchMaxRecords | int64 | quote }}
- name: BATCH_TIMEOUT_MS
  value: {{ $v.consumer.batchTimeoutMs | int64 | quote }}
- name: FETCH_MAX_WAIT_MS
  value: {{ $v.consumer.fetchMaxWaitMs | int64 | quote }}
- name: FETCH_MAX_BYTES
  value: {{ $v.consumer.fetchMaxBytes | int64 | quote }}
- name: SESSION_TIMEOUT_MS
  value: {{ $v.consumer.sessionTimeoutMs | int64 | quote }}
- name: HEARTBEAT_INTERVAL_MS
  value: {{ $v.consumer.heartbeatIntervalMs | int64 | quote }}
- name: RETRY_BACKOFF_MAX_SECONDS
  value: {{ $v.consumer.retryBackoffMaxSeconds | quote }}
- name: STALL_TIMEOUT_SECONDS
  value: {{ $v.consumer.stallTimeoutSeconds | quote }}
- name: SHUTDOWN_GRACE_SECONDS
  value: {{ $v.shutdownGraceSeconds | quote }}
- name: METRICS_HOST
  value: {{ $v.metricsHost | quote }}
- name: METRICS_PORT
  value: {{ $c.metricsPort | int64 | quote }}
- name: LOG_LEVEL
  value: {{ $v.logging.level | quote }}
- name: LOG_FORMAT
  value: {{ $v.logging.format | quote }}
- name: EVENT_SOURCE
  value: {{ $c.eventSource | quote }}
{{- if eq .component "enricher" }}
- name: ENRICHER_GROUP_ID
  value: {{ $c.groupId | quote }}
- name: CATALOG_PATH
  value: {{ printf "%s/%s" (include "ticketroute.catalogDir" $root) $v.catalog.key | quote }}
- name: CATALOG_POLL_SECONDS
  value: {{ $v.catalog.pollSeconds | quote }}
{{- else if eq .component "router" }}
- name: ROUTER_GROUP_ID
  value: {{ $c.groupId | quote }}
- name: TOPIC_ROUTER_MEMORY
  value: {{ $v.topics.routerMemory | quote }}
- name: DUPLICATE_WINDOW
  value: {{ $c.duplicateWindow | int64 | quote }}
- name: REVISION_MEMORY
  value: {{ $c.revisionMemory | int64 | quote }}
- name: TSANET_SUBMITTER_NAME
  value: {{ $c.tsanet.submitterName | quote }}
- name: TSANET_SUBMITTER_EMAIL
  value: {{ $c.tsanet.submitterEmail | quote }}
{{- with $c.tsanet.submitterPhone }}
- name: TSANET_SUBMITTER_PHONE
  value: {{ . | quote }}
{{- end }}
{{- else if eq .component "tracker" }}
- name: TRACKER_GROUP_ID
  value: {{ $c.groupId | quote }}
- name: TOPIC_SLA_EVENTS
  value: {{ $v.topics.slaEvents | quote }}
- name: TOPIC_RESPONSES_REDHAT
  value: {{ $v.topics.responsesRedhat | quote }}
- name: TOPIC_RESPONSES_TSANET
  value: {{ $v.topics.responsesTsanet | quote }}
- name: TOPIC_TRACKER_STATE
  value: {{ $v.topics.trackerState | quote }}
- name: AT_RISK_FRACTION
  value: {{ $c.atRiskFraction | quote }}
- name: HELD_RESPONSE_SECONDS
  value: {{ $c.heldResponseSeconds | int64 | quote }}
{{- end }}
{{- end -}}
