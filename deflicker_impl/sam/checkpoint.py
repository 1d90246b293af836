"""Reading a Segment Anything checkpoint and recognising its architecture from its tensors.

The three published image encoders differ in width and depth (vit_b 768 x 12, vit_l 1024 x 24,
vit_h 1280 x 32); a file's name says nothing reliable (users rename files), so the kind is read
from the tensors: the width from `image_encoder.pos_embed`, the depth from the block indices, the
head count from the relative-position tables, and which blocks attend globally from the size of
those tables. A smaller ViT encoder of the same family (a distilled or test model) loads as
"custom". Checkpoints are read with `torch.load(weights_only=True)` (no code execution) or
safetensors.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError

CHECKPOINT_FILES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
CHECKPOINT_SOURCE = (
    "https://github.com/facebookresearch/segment-anything#model-checkpoints "
    "(the segment-anything repository's 'Model Checkpoints' section)"
)
# (embedding width, depth) of the published encoders.
KNOWN_ENCODERS = {(768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}
IMAGE_SIZE, PATCH_SIZE, WINDOW_SIZE = 1024, 16, 14
PROMPT_WIDTH = 256  # prompt encoder and mask decoder width of every published SAM
_BLOCK_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.")


@dataclass(frozen=True)
class SamArchitecture:
    """What the tensors say about the image encoder (the prompt encoder and decoder are fixed)."""

    kind: str  # "vit_b", "vit_l", "vit_h" or "custom"
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]


@dataclass
class SamModel:
    """A loaded SAM (the DEFLICKER_SAM object between nodes): the network stays on the CPU
    between uses and runs on `device` ("auto", "cpu", "cuda", ...) when asked for masks."""

    model: torch.nn.Module
    arch: SamArchitecture
    path: str
    device: str = "auto"

    @property
    def kind(self) -> str:
        return self.arch.kind


def missing_checkpoint_message(folder: str | os.PathLike) -> str:
    names = ", ".join(f"{name} ({kind})" for kind, name in CHECKPOINT_FILES.items())
    return (f"No Segment Anything checkpoint found in {folder}. Put one of {names} there; get "
            f"them from {CHECKPOINT_SOURCE}. Nothing is downloaded automatically.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a .pth/.pt (weights only) or .safetensors file; WeightsError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"SAM checkpoint {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, random bytes, ...
        raise WeightsError(
            f"SAM checkpoint {path.name} cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no details'}). The file is truncated, "
            f"corrupt or not a SAM checkpoint; download it again from {CHECKPOINT_SOURCE}."
        ) from exc
    if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("model", "state_dict"):  # checkpoints saved by training scripts
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"SAM checkpoint {path.name} holds no tensors; it is not a SAM "
                           f"checkpoint. Get one from {CHECKPOINT_SOURCE}.")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def recognise_architecture(state: dict[str, torch.Tensor], name: str = "checkpoint") \
        -> SamArchitecture:
    """The encoder's architecture from a SAM state dict; WeightsError for anything else."""
    pos = state.get("image_encoder.pos_embed")
    grid = IMAGE_SIZE // PATCH_SIZE
    if pos is None or pos.ndim != 4 or tuple(pos.shape[:3]) != (1, grid, grid):
        found = "has no image_encoder.pos_embed" if pos is None \
            else f"has image_encoder.pos_embed of shape {tuple(pos.shape)}"
        raise WeightsError(
            f"{name} is not an original Segment Anything checkpoint (it {found}). Supported: "
            f"{', '.join(CHECKPOINT_FILES.values())} from {CHECKPOINT_SOURCE} (SAM 2, HQ-SAM "
            "and MobileSAM files are different networks).")
    embed_dim = int(pos.shape[3])
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))})
    if not blocks or blocks != list(range(len(blocks))):
        raise WeightsError(f"{name}: the image encoder's blocks are missing or not numbered "
                           "0..N-1; the file is damaged. Download it again.")
    heads, global_idx = [], []
    for b in blocks:
        rel = state.get(f"image_encoder.blocks.{b}.attn.rel_pos_h")
        if rel is None or rel.ndim != 2:
            raise WeightsError(f"{name}: block {b} has no relative position table; not a SAM "
                               "ViT encoder.")
        heads.append(embed_dim // int(rel.shape[1]))
        if int(rel.shape[0]) == 2 * grid - 1:
            global_idx.append(b)
        elif int(rel.shape[0]) != 2 * WINDOW_SIZE - 1:
            raise WeightsError(f"{name}: block {b} has an unexpected attention window "
                               f"({rel.shape[0]}); not a SAM ViT encoder.")
    if len(set(heads)) != 1:
        raise WeightsError(f"{name}: blocks disagree on the head count; the file is damaged.")
    kind = KNOWN_ENCODERS.get((embed_dim, len(blocks)), "custom")
    return SamArchitecture(kind, embed_dim, len(blocks), heads[0], tuple(global_idx))


def build_sam(arch: SamArchitecture) -> torch.nn.Module:
    """An untrained SAM of this architecture, in eval mode: segment_anything's registry for
    the published kinds, else assembled from its public modules with the published design
    around the recognised encoder (prompt width 256, a two-block decoder transformer)."""
    from segment_anything import sam_model_registry

    if arch.kind in sam_model_registry:
        return sam_model_registry[arch.kind](checkpoint=None)
    from functools import partial

    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    grid = IMAGE_SIZE // PATCH_SIZE
    encoder = ImageEncoderViT(
        img_size=IMAGE_SIZE, patch_size=PATCH_SIZE, embed_dim=arch.embed_dim, depth=arch.depth,
        num_heads=arch.num_heads, mlp_ratio=4, out_chans=PROMPT_WIDTH, qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=WINDOW_SIZE, global_attn_indexes=tuple(arch.global_attn_indexes))
    prompts = PromptEncoder(embed_dim=PROMPT_WIDTH, image_embedding_size=(grid, grid),
                            input_image_size=(IMAGE_SIZE, IMAGE_SIZE), mask_in_chans=16)
    decoder_transformer = TwoWayTransformer(depth=2, embedding_dim=PROMPT_WIDTH, mlp_dim=2048,
                                            num_heads=8)
    decoder = MaskDecoder(transformer_dim=PROMPT_WIDTH, transformer=decoder_transformer,
                          num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=256)
    return Sam(image_encoder=encoder, prompt_encoder=prompts, mask_decoder=decoder).eval()


def load_sam(path: str | os.PathLike, device: str = "auto") -> SamModel:
    """Load a SAM checkpoint onto the CPU, recognising its kind from the tensors.

    `device` is where `masks_from_prompts` will run it. Raises WeightsError naming the file
    when it is missing, unreadable, of another network, or its tensors do not fit.
    """
    path = Path(path)
    state = read_state_dict(path)
    arch = recognise_architecture(state, path.name)
    model = build_sam(arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(first[1:3]).strip() or first[0]
        raise WeightsError(
            f"SAM checkpoint {path.name} looks like {arch.kind} but its tensors do not fit the "
            f"network ({detail[:300]}). The file is damaged or of another SAM variant."
        ) from exc
    model.eval().requires_grad_(False)
    return SamModel(model, arch, str(path), device)
