"""Random pixel subsets of per-frame data, gathered fast.

Every optimisation step of the atlas fits reads the same random pixels of several per-frame
tensors (targets, flow successors, masks) shaped [..., N] over N pixels. Indexing the last dim of
a [T,C,N] tensor takes torch's slow strided path on the CPU; a pixel-major copy ([N, ...]) makes
the same subset one contiguous row gather, two orders of magnitude faster.
"""

from __future__ import annotations

import torch


class PixelTable:
    """`values` with N pixels along `dim`, kept pixel-major; `take(pix)` equals
    `values.index_select(dim, pix)` exactly (e.g. `values[..., pix]` for the default dim=-1)."""

    def __init__(self, values: torch.Tensor, dim: int = -1):
        self._dim = dim
        self._rows = values.movedim(dim, 0).contiguous()  # [N, ...]

    @property
    def num_pixels(self) -> int:
        return self._rows.shape[0]

    def take(self, pix: torch.Tensor) -> torch.Tensor:
        """Pixels `pix` [P] (long) -> `values`' shape with P pixels along `dim`, contiguous."""
        return self._rows.index_select(0, pix).movedim(0, self._dim).contiguous()
