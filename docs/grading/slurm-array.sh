#!/bin/bash
# Grade a class on a Slurm cluster: 8 array tasks, one shard each, then one merge job.
# Sample only: not run on a cluster (docs/grading.md, "Sharding a class").
#
# Submit from the folder that holds submissions/ (on a file system every node sees):
#   grade=$(sbatch --parsable docs/grading/slurm-array.sh)
#   sbatch --dependency=afterok:$grade --wrap \
#     "coursekit grade merge $(printf 'grades-%d ' $(seq 1 8)) --out grades"
#
#SBATCH --job-name=coursekit-grade
#SBATCH --array=1-8
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=grade-%a.log
set -euo pipefail

SHARDS=8  # = the size of --array above
# Shard i of n takes the sorted learner names whose 0-based index k has k mod n == i - 1;
# SLURM_ARRAY_TASK_ID runs 1..8, the 1-based i.
coursekit grade submissions \
  --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}" \
  --out "grades-${SLURM_ARRAY_TASK_ID}" \
  --workers "${SLURM_CPUS_PER_TASK}" \
  --deadline 2026-12-01T17:00+00:00
