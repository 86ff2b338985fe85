#!/usr/bin/env bash
# A long run as a chain of jobs: each link continues the previous one's checkpoint.
#
#   jobs/chain.sh LINKS [mlpar options]      e.g. jobs/chain.sh 4 --nu 25 --width 1024 --max-iter 20000
#
# Link 1 starts the run (jobs/train.sbatch); links 2..LINKS are submitted with
# --dependency=afterok on the previous link and resume runs/<name>-<first job id>/result.h5.
# All links share one run directory through MLPAR_RUN_ID (the first job id).
set -euo pipefail
links=${1:?usage: jobs/chain.sh LINKS [mlpar options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
name=${MLPAR_JOB_NAME:-mlpar-chain}
first=$(sbatch --parsable --job-name="$name" "$here/train.sbatch" "$@")
echo "link 1: job $first"
prev=$first
for ((k = 2; k <= links; k++)); do
    prev=$(sbatch --parsable --job-name="$name" --dependency=afterok:"$prev" \
        --export=ALL,MLPAR_RUN_ID="$first" "$here/train.sbatch" "$@")
    echo "link $k: job $prev (after $first...)"
done
echo "run directory: ${MLPAR_RUNS:-$PWD/runs}/$name-$first"
