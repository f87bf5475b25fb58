#!/usr/bin/env bash
# Every reference study of results/reference/README.md (issue 15's section), in order, as one command:
#     bash benchmarks/reproduce_reference.sh
# Each step is the study's own resumable command: run again after an interruption, this script goes on
# where it stopped, and a finished step costs only its start-up (every run is found recorded; the
# command rewrites the folder's config.json with today's code version, nothing else).
# On 2 cores, --jobs 2 (the study files say so): about 15 hours of wall time from nothing (the reports'
# cost lines added up); the wall time of each study is in its report. Data comes from `fetch` (or
# $AEBENCH_DATA); run from any folder.
set -euo pipefail
cd "$(dirname "$0")/.."

python cli.py fetch mnist
python cli.py fetch fashion-mnist

# The MNIST tuning study chooses its FID backbone with "auto" (it predates naming it), which takes
# Inception wherever its weights are found. It resolved to the classifier when it ran, so it runs here
# with a TORCH_HOME that holds no Inception weights, whatever this machine has; the Inception network
# lives in a TORCH_HOME of its own, used by the Inception pass only.
no_inception=$(mktemp -d)
trap 'rm -rf "$no_inception"' EXIT
inception_home="${AEBENCH_CACHE:-$HOME/.cache/aebench}/inception-torch-home"

TORCH_HOME="$no_inception" python cli.py tune --config studies/tune-standard-mnist.toml --budget 4 --quiet
python cli.py run --config studies/reference-mnist.toml --quiet
python cli.py run --config studies/ablation-swae-mnist.toml --quiet   # copies reference-mnist's swae runs
TORCH_HOME="$inception_home" python cli.py fetch inception
TORCH_HOME="$inception_home" python cli.py run --config studies/inception-mnist.toml --quiet   # reference-mnist's weights

python cli.py tune --config studies/tune-standard-fashion-mnist.toml --budget 4 --quiet
if [ ! -f studies/reference-fashion-mnist.toml ]; then
  python benchmarks/reference_study.py fashion-mnist   # the study file, from the tuning's tuned.toml
fi
python cli.py run --config studies/reference-fashion-mnist.toml --quiet

for study in tune-standard-mnist reference-mnist ablation-swae-mnist inception-mnist tune-standard-fashion-mnist \
             reference-fashion-mnist; do
  TORCH_HOME="$inception_home" python cli.py report "results/reference/$study"
done
python cli.py claims results/reference/reference-mnist results/reference/reference-fashion-mnist \
  results/reference/inception-mnist --ablation results/reference/ablation-swae-mnist --out results/README.md
