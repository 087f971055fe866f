#!/usr/bin/env bash
# The GPU figures in one run, for a lent GPU machine (one command, results under $OUT):
#   whisper-small training throughput vs a plain Seq2SeqTrainer, the 0.6 B E2E step's batch and memory,
#   real-time streams per GPU (whisper-small shapes), and each trainer under scripts/accelerate/fsdp.yaml.
# The streaming audio and the small export come from this machine's synthetic corpus (no espeak-ng there):
#   benchmarks/results/gpu_input/{stream.flac,small_export}. SMOKE=1 runs tiny shapes on a CPU to check the script;
#   THROUGHPUT=0 leaves out the throughput comparison (the longest step).
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-python3}
IN=benchmarks/results/gpu_input
if [ "${SMOKE:-0}" = 1 ]; then
  W="--shapes tiny --batch 4 --steps 2 --clips 40"; E="--shapes tiny --batches 2 --steps 1"
  S="--shapes tiny --streams 1 --seconds 4"
else
  W="--shapes small --batch 32 --steps 12 --clips 600 --bf16"; E="--shapes xlsr-mbart --bf16 --batches 1,16,64 --steps 3"
  S="--shapes small --streams 1,8,32 --seconds 20"
fi
step() { local limit=$1; shift; echo "=== $* (limit ${limit}s)"; local t0=$SECONDS
  timeout "$limit" "$@"; echo "=== rc=$? in $((SECONDS - t0)) s"
  cp benchmarks/results/*.json benchmarks/results/streaming/*.png "$OUT"/ 2>/dev/null; }  # kept if a later step is cut
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  $PY -c "import torch, transformers, datasets, accelerate; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'accelerate', accelerate.__version__)"
  step 100 $PY -m benchmarks.e2e_memory $E
  step 100 $PY -m benchmarks.streaming_capacity $S --audio $IN/stream.flac --backends transformers,ct2
  COMMON="--max_steps 2 --eval_steps 2 --save_steps 2 --logging_steps 1 --warmup_steps 1 --max_eval_samples 4
          --report_to none --progress false --dataset $IN/small_export --dataset_config prelabeled
          --per_device_train_batch_size 4"
  for fam in "whisper --model_name_or_path scratch --scratch_d_model 64 --scratch_encoder_layers 1 --scratch_decoder_layers 1 --scratch_vocab_size 300 --input_seconds 8 --ct2_quantization none" \
             "e2e --encoder_name_or_path scratch --scratch_vocab_size 300 --max_seconds 8 --layerdrop 0 --mask_time_prob 0" \
             "mt --model_name_or_path scratch --scratch_vocab_size 300 --scratch_d_model 32"; do
    set -- $fam; name=$1; shift
    if [ "${SMOKE:-0}" = 1 ]; then launch=($PY -m modeling.$name.train)
    else launch=(accelerate launch --config_file scripts/accelerate/fsdp.yaml --num_processes 1 -m modeling.$name.train); fi
    step 45 "${launch[@]}" --output_dir /tmp/fsdp_$name $COMMON "$@" && ls /tmp/fsdp_$name/best 2>&1 | head -12
  done
  $PY -c "import deepspeed" 2>&1 | tail -1
  [ "${THROUGHPUT:-1}" = 1 ] && step 90 $PY -m benchmarks.whisper_throughput $W
} 2>&1 | tee "$OUT/gpu.log"
ls -la "$OUT"
