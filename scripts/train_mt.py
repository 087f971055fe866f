#!/usr/bin/env python
"""Fine-tune the cascade's MT model (mBART-50 many-to-many or NLLB) on transcript → translation pairs (also:
``vecs train mt``, ``python -m modeling.mt.train``).

    python scripts/train_mt.py --dataset vecs/vecs-cs --output_dir mt-vecs \\
        --model_name_or_path facebook/mbart-large-50-many-to-many-mmt --push_to_hub --hub_model_id me/vecs-mt

Offline: ``--model_name_or_path scratch`` builds a tiny mBART and a tokenizer from the corpus text.
"""
import sys

from modeling.registry import FAMILIES

if __name__ == "__main__":
    sys.exit(FAMILIES["mt"].main())
