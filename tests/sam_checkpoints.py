"""Randomly initialised Segment Anything checkpoints for tests (no real weights exist offline).

`tiny_sam_checkpoint` writes the smallest ViT encoder segment_anything builds quickly (width 32,
2 blocks, one global) with the real prompt encoder and mask decoder: it goes through exactly the
loading and prompting code a real checkpoint does, at about 1 s per frame on one CPU core.
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_sam_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from deflicker_impl.sam.checkpoint import SamArchitecture, build_sam

    torch.manual_seed(seed)
    return build_sam(SamArchitecture("custom", 32, 2, 2, (1,))).state_dict()


def tiny_sam_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save a tiny random SAM as .pth (torch.save) or .safetensors, by the path's suffix."""
    state = tiny_sam_state(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def encoder_only_state(embed_dim: int, depth: int, head_dim: int, global_every: int) \
        -> dict[str, torch.Tensor]:
    """Just the tensors that identify a SAM encoder (pos_embed and relative-position tables),
    for recognising vit_b/l/h without building 100M-600M parameter networks."""
    state = {"image_encoder.pos_embed": torch.zeros(1, 64, 64, embed_dim)}
    for b in range(depth):
        size = 127 if b % global_every == global_every - 1 else 27
        state[f"image_encoder.blocks.{b}.attn.rel_pos_h"] = torch.zeros(size, head_dim)
    return state
