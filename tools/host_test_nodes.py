"""Test-only ComfyUI custom node: feeds deliberately bad IMAGE batches to our nodes.

The harness links this file into the test host's custom_nodes/ (never into a user's ComfyUI).
Core nodes cannot produce an empty batch, NaN pixels or a [T,C,H,W] tensor, yet upstream custom
nodes do; this node lets the real-host tests check how our nodes answer them.
"""

import torch

KINDS = ("good", "empty", "nan", "inf", "channels_first", "gray", "rgba")


class DeflickerTestImages:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "kind": (list(KINDS), {"default": "good"}),
            "frames": ("INT", {"default": 4, "min": 0, "max": 64}),
            "width": ("INT", {"default": 24, "min": 1, "max": 4096}),
            "height": ("INT", {"default": 16, "min": 1, "max": 4096}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, kind, frames, width, height):
        g = torch.Generator().manual_seed(0)
        images = torch.rand(frames, height, width, 3, generator=g) * 0.6 + 0.2
        if kind == "empty":
            images = images[:0]
        elif kind == "nan":
            images[min(1, frames - 1), 0, 0, 0] = float("nan")
        elif kind == "inf":
            images[-1, -1, -1, -1] = float("inf")
        elif kind == "channels_first":
            images = images.permute(0, 3, 1, 2).contiguous()
        elif kind == "gray":
            images = images[..., :1].contiguous()
        elif kind == "rgba":
            images = torch.cat([images, torch.ones_like(images[..., :1])], dim=-1)
        return (images,)


NODE_CLASS_MAPPINGS = {"DeflickerTestImages": DeflickerTestImages}
