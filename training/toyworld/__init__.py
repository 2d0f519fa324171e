"""The toy world's experiment (DESIGN §6): pretrain a toy CLIP and a toy LLM, fine-tune, ablate.

    python -m training.toyworld --out runs/toyworld --install checkpoints/toy   # everything
    python -m training.toyworld.pretrain --out DIR [--quick]                    # the base models only

pipeline.py runs the stages; report.py makes the table; toy_clip.py / captions.py /
clip_eval.py pretrain and check the toy CLIP; toy_llm.py / corpus.py the toy LLM.
"""

LOG_FORMAT = (
    "%(asctime)s %(name)s %(message)s"  # the toy-world commands' log lines (and their worker processes')
)
