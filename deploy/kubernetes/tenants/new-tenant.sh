#!/usr/bin/env bash
# Make the overlay of one tenant: deploy/kubernetes/tenants/NAME/ (docs/operations.md).
#
#   bash deploy/kubernetes/tenants/new-tenant.sh NAME TENANT_ID CLIENT_ID [RULES.toml] [client-secret]
#
# NAME (lower-case letters, digits, '-') prefixes every object (NAME-licsync-sync, …) and names the
# tenant's PostgreSQL schema (licsync_NAME). RULES.toml holds the tenant's [[group_licenses]]
# (default: the base example). With `client-secret` the overlay uses the client-secret component
# instead of workload identity. Many tenants from a list (name,tenant id,client id,rules file):
#
#   while IFS=, read -r name tenant client rules; do
#     bash deploy/kubernetes/tenants/new-tenant.sh "$name" "$tenant" "$client" "$rules"
#   done < tenants.csv
#   kubectl apply -k deploy/kubernetes/tenants/    # every tenant listed in its kustomization.yaml
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=${1:?NAME}; tenant=${2:?TENANT_ID}; client=${3:?CLIENT_ID}
rules=${4:-}; mode=${5:-workload-identity}
[[ $name =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]] \
  || { echo "new-tenant.sh: NAME must be 1-32 lower-case letters, digits or '-'" >&2; exit 2; }
guid='^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'
[[ $tenant =~ $guid && $client =~ $guid ]] \
  || { echo "new-tenant.sh: TENANT_ID and CLIENT_ID must be GUIDs" >&2; exit 2; }
out=$here/$name
mkdir -p "$out"
schema=licsync_${name//-/_}
auth=workload_identity
[[ $mode == client-secret ]] && auth=client_secret

{
  printf '[graph]\ntenant_id = "%s"\nclient_id = "%s"\nauth = "%s"\n\n' "$tenant" "$client" "$auth"
  printf '[state]\nschema = "%s"\nmax_run_seconds = 3000\n\n' "$schema"
  if [[ -n $rules ]]; then cat "$rules"; else sed -n '/^\[\[group_licenses\]\]/,$p' "$here/../base/licsync.toml"; fi
} >"$out/licsync.toml"

{
  cat <<YAML
# tenant $name ($tenant): made by new-tenant.sh
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: $name-
labels:
  - pairs:
      app.kubernetes.io/instance: $name
    includeTemplates: true
resources:
  - ../../base
configMapGenerator:
  - name: licsync-config
    behavior: replace
    files:
      - licsync.toml
patches:
  - target:
      kind: ServiceAccount
      name: licsync
    patch: |-
      - op: replace
        path: /metadata/annotations/azure.workload.identity~1client-id
        value: "$client"
      - op: replace
        path: /metadata/annotations/azure.workload.identity~1tenant-id
        value: "$tenant"
YAML
  if [[ $mode == client-secret ]]; then
    printf 'components:\n  - ../../components/client-secret\n'
  fi
} >"$out/kustomization.yaml"
echo "$out"
