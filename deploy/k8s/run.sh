#!/usr/bin/env bash
# Runs the sharded default job on the cluster kubectl points at: the volume, the plan, the
# shards (an Indexed Job), then assemble + verify once every index has completed.
set -euo pipefail
cd "$(dirname "$0")"
kubectl apply -f volume.yaml
kubectl apply -f plan.yaml
kubectl wait --for=condition=complete --timeout=10m job/fold-ml-plan
kubectl apply -f prove-shards.yaml
kubectl wait --for=condition=complete --timeout=24h job/fold-ml-prove-shards
kubectl apply -f assemble.yaml
kubectl wait --for=condition=complete --timeout=1h job/fold-ml-assemble
kubectl logs job/fold-ml-assemble
