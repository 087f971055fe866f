#!/usr/bin/env python
"""Fine-tune Whisper on a VECS dataset and push it to the Hub (also: ``vecs train whisper``,
``python -m modeling.whisper.train``).

    python scripts/train_whisper.py --dataset vecs/vecs-cs --output_dir whisper-small-vecs \\
        --model_name_or_path openai/whisper-small --learning_rate 1e-5 --per_device_train_batch_size 16 \\
        --mixed_precision bf16 --gradient_checkpointing --ctc_weight 0.3 --push_to_hub --hub_model_id me/whisper-vecs

    accelerate launch --config_file scripts/accelerate/ddp.yaml scripts/train_whisper.py ...   # several GPUs

Offline (no Hub): ``--model_name_or_path scratch`` builds a small Whisper and its tokenizer from the training text.
"""
import sys

from modeling.registry import FAMILIES

if __name__ == "__main__":
    sys.exit(FAMILIES["whisper"].main())
