{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "llmops-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name when it already contains the chart name. */}}
{{- define "llmops-operator.fullname" -}}
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

{{- define "llmops-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmops-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmops-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmops-operator.labels" -}}
helm.sh/chart: {{ include "llmops-operator.chart" . }}
{{ include "llmops-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: llmops-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "llmops-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llmops-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "llmops-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The pricing catalog exactly as the ConfigMap carries it (also hashed into checksum/pricing). */}}
{{- define "llmops-operator.pricing" -}}
{{- toYaml .Values.pricing }}
{{- end }}

{{/*
RBAC rules for namespaced objects. Every rule says who needs it: "kopf" (the framework) or "app" (the
reconcilers). No wildcards anywhere; kopf peering is not used (the operator runs with standalone=True,
and replicas elect a leader on a Lease instead), so kopf.dev peering objects are not granted.
*/}}
{{- define "llmops-operator.namespacedRules" -}}
# kopf + app: kopf posts an Event for each handler's progress and errors; the app one per phase or Ready change,
# and a repeat of the same Event is counted on the one already there (get, then patch count and lastTimestamp).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "get", "patch"]
# kopf + app: kopf watches the llmops.dev kinds and patches them (finalizer, last-handled annotation);
# the app reads the objects its specs reference (get).
- apiGroups: ["llmops.dev"]
  resources: ["trainingjobs", "finetunes", "guardrails", "inferenceservices", "promptreleases", "vectorindexes", "featureviews"]
  verbs: ["get", "list", "watch", "patch"]
# app: spec.retrain creates a FineTune or TrainingJob from its template when drift is detected.
- apiGroups: ["llmops.dev"]
  resources: ["trainingjobs", "finetunes"]
  verbs: ["create"]
# app: writes .status of every llmops.dev kind (status subresource patch).
- apiGroups: ["llmops.dev"]
  resources: ["trainingjobs/status", "finetunes/status", "guardrails/status", "inferenceservices/status", "promptreleases/status", "vectorindexes/status", "featureviews/status"]
  verbs: ["get", "patch"]
# app: children carry ownerReferences with blockOwnerDeletion=true; the OwnerReferencesPermissionEnforcement
# admission plugin requires update on the owner's finalizers subresource for that.
- apiGroups: ["llmops.dev"]
  resources: ["trainingjobs/finalizers", "finetunes/finalizers", "guardrails/finalizers", "inferenceservices/finalizers", "promptreleases/finalizers", "vectorindexes/finalizers", "featureviews/finalizers"]
  verbs: ["update"]
# app: ConfigMaps (run configs, progress reports, compiled guardrail policies, prompt versions). Mutable ones are
# written with server-side apply (patch; create when apply creates the object); immutable ones, named after
# their content, are created once with a POST (create; on a name already taken, get checks the holder) and never
# patched. All are pruned with delete.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: each training run reports progress through a ServiceAccount whose Role may get/patch only that run's
# progress ConfigMap. The operator holds those permissions itself (configmaps above), so creating the Role and
# RoleBinding needs neither escalate nor bind.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: the reporters' Roles and RoleBindings (see above).
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: evaluation/ingestion Jobs and scheduled CronJobs.
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: NetworkPolicies closing Ray pods to other tenants and guarded predictors to all but their transformer.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: KubeRay RayJobs for TrainingJob/FineTune (the operator watches them to mirror their status).
- apiGroups: ["ray.io"]
  resources: ["rayjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: KServe InferenceServices behind llmops.dev InferenceService.
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices", "llminferenceservices", "localmodelnamespacecaches"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: spec.model.cache without KServe's local model cache: the claim every replica reads; spec.deployment
# llmInferenceService: the guardrail gateway's Deployment and Service.
- apiGroups: [""]
  resources: ["persistentvolumeclaims", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# app: the guardrail gateway Deployment in front of an LLMInferenceService.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}

{{/* Cluster-scoped reads kopf needs for its own bookkeeping. */}}
{{- define "llmops-operator.clusterRules" -}}
# kopf: notices CRDs being added/removed (resource discovery refresh); read-only.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
# app: reads the schema of the engine CRDs it writes, to leave out fields an older engine release does not declare.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  resourceNames: ["rayjobs.ray.io", "inferenceservices.serving.kserve.io", "llminferenceservices.serving.kserve.io"]
  verbs: ["get"]
{{- end }}

{{/* Leader election (leaderElection.enabled), in the release namespace only. */}}
{{- define "llmops-operator.leaseRules" -}}
# app: replicas hold a coordination.k8s.io Lease; only its holder reconciles (`llmops run --leader-elect`).
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}

{{/* System namespaces the operator never acts in: refused in watchNamespaces and, with
systemNamespacePolicy.enabled, at admission. */}}
{{- define "llmops-operator.systemNamespaces" -}}
{{- toJson (concat (list "kube-system" "kube-public" "kube-node-lease") .Values.systemNamespacePolicy.extraNamespaces) }}
{{- end }}

{{- define "llmops-operator.namespaceRules" -}}
# kopf: in cluster-wide mode, follows namespaces appearing and disappearing; read-only.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{/*
Argo CD health checks: `resource.customizations.health.llmops.dev_<Kind>: <script>` for every files/argocd/<Kind>.lua.
*/}}
{{- define "llmops-operator.argocdHealth" -}}
{{- $body := .Files.Get "files/argocd/health.lua" }}
{{- range $path, $_ := .Files.Glob "files/argocd/*.lua" }}
{{- $kind := base $path | trimSuffix ".lua" }}
{{- if ne $kind "health" }}
resource.customizations.health.llmops.dev_{{ $kind }}: |
  {{- printf "%s\n%s" ($.Files.Get $path) $body | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}
