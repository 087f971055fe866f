#!/usr/bin/env python
"""Train the end-to-end speech-translation model (XLS-R + adapter + mBART-50) and push it (also: ``vecs train e2e``,
``python -m modeling.e2e.train``).

    python scripts/train_e2e.py --dataset vecs/vecs-cs --output_dir e2e-vecs --mixed_precision bf16 \\
        --gradient_checkpointing --per_device_train_batch_size 16 --freeze_encoder_steps 1000 \\
        --push_to_hub --hub_model_id me/vecs-e2e

    accelerate launch --config_file scripts/accelerate/ddp.yaml scripts/train_e2e.py ...

Offline: ``--encoder_name_or_path scratch`` builds a tiny wav2vec2 + mBART pair and a tokenizer from the corpus.
"""
import sys

from modeling.registry import FAMILIES

if __name__ == "__main__":
    sys.exit(FAMILIES["e2e"].main())
