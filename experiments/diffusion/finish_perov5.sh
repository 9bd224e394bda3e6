#!/usr/bin/env bash
# After the perov5_d3pm run ends (issue 16): curve, ship as perov-5, 10,000 samples + atomsmith evaluate, site
# statistics. One heavy job at a time: waits for the training process given as $1 (a pid) before starting.
#   nohup bash experiments/diffusion/finish_perov5.sh $(cat /tmp/train_pid) > /tmp/finish_perov5.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
if [ -n "${1:-}" ]; then while kill -0 "$1" 2>/dev/null; do sleep 20; done; fi
echo "== $(date -u +%T) training ended"
$PY experiments/diffusion/run_status.py experiments/diffusion/runs/perov5_d3pm.train.ckpt \
    --plot experiments/diffusion/perov5_d3pm_curve.png | tail -6
$PY experiments/diffusion/ship.py experiments/diffusion/runs/perov5_d3pm.train.ckpt \
    --out src/atomsmith/pretrained/perov-5.ckpt --step-lr 1e-5 --step-lr-csp 3e-5 \
    --note "perov5_d3pm run (masked species), experiments/diffusion/runs/LEDGER.md; sampler step sizes from the step-19k study"
echo "== $(date -u +%T) shipped; sampling 10,000"
$PY experiments/diffusion/sample_perov5.py --model perov-5 --n 10000 --seed 0 --tag _d3pm \
    --out experiments/diffusion/perov5_samples_10k.extxyz.gz --evaluate
echo "== $(date -u +%T) site statistics"
$PY experiments/diffusion/site_stats.py experiments/diffusion/perov5_samples_10k.extxyz.gz \
    --out experiments/diffusion/site_stats_10k.json
echo "== $(date -u +%T) done"
