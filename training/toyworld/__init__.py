"""The toy world's experiment (DESIGN §6): pretrain a toy CLIP and a toy LLM, fine-tune, ablate.

    python -m training.toyworld --out runs/toyworld --install checkpoints/toy   # everything
    python -m training.toyworld.pretrain --out DIR [--quick]                    # the base models only

pipeline.py runs the stages; report.py makes the table; toy_clip.py / captions.py /
clip_eval.py pretrain and check the toy CLIP; toy_llm.py / corpus.py the toy LLM.
"""

# the toy-world commands' log lines (and their worker processes')
LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


def optimiser_step(model, optimizer, loss, running: float, step: int) -> float:
    """One optimiser step on `loss` (gradients clipped to norm 1) for the toy pretrainings; returns
    the running loss (an exponential mean, 0.9) that their progress lines show."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return 0.9 * running + 0.1 * loss.item() if step else loss.item()
