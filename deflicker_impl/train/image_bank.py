"""Where the filter's training images come from, and how crops are drawn from them.

An ImageBank holds decoded uint8 images [H,W,3] in RAM (or on the training device) with a name
each. Sources: folders of images (video frames too), a cache file built by
scripts/build_train_cache.py, or procedural scenes (tests, smoke runs).

The train/validation split is deterministic and independent of the order files are found in:
an image goes to validation when the hash of its *split key* falls below the fraction. The key is
the name up to its first "__", so all frames of one clip (named "clip__00012.png") land on the
same side and near-identical frames never straddle the split.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import DeflickerInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
CACHE_FORMAT = "deflicker-image-bank-v1"


@dataclass
class ImageBank:
    images: list[torch.Tensor]  # uint8 [H,W,3]
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    # --- sources ------------------------------------------------------------------------------

    @classmethod
    def from_folders(
        cls, folders: Iterable[str | os.PathLike], clips: bool = False, max_side: int = 1024
    ) -> ImageBank:
        """All images under the folders (recursively), downscaled to at most `max_side`.

        clips=True treats each sub-folder as one clip: its frames are named "sub__file" so the
        split keeps a clip together.
        """
        images, names = [], []
        for folder in folders:
            root = Path(folder)
            if not root.is_dir():
                raise DeflickerInputError(f"Image folder {root} does not exist.")
            for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
                rel = path.relative_to(root)
                if clips and len(rel.parts) > 1:
                    name = f"{rel.parts[0]}__{'_'.join(rel.parts[1:])}"
                else:
                    name = rel.as_posix()
                images.append(resize_max_side(_read_image(path), max_side))
                names.append(name)
        if not images:
            raise DeflickerInputError(
                f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {list(folders)}."
            )
        return cls(images, names)

    @classmethod
    def from_cache(cls, path: str | os.PathLike) -> ImageBank:
        """Read a cache written by `save_cache` (raw pixels or JPEG bytes)."""
        path = Path(path)
        if not path.is_file():
            raise DeflickerInputError(
                f"Training cache {path} not found; build it with "
                "`python -m scripts.build_train_cache`."
            )
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != CACHE_FORMAT:
                raise DeflickerInputError(f"{path} is not an image-bank cache ({CACHE_FORMAT}).")
            names = json.loads(meta["names"])
            shapes = handle.get_tensor("shapes").tolist()
            offsets = handle.get_tensor("offsets").tolist()
            data = handle.get_tensor("data").numpy()
        images = []
        for (h, w, c), start, stop in zip(shapes, offsets[:-1], offsets[1:], strict=True):
            blob = data[start:stop]
            if meta.get("encoding") == "jpeg":
                array = _decode_image_bytes(blob.tobytes())
            else:
                array = blob.reshape(h, w, c)
            images.append(torch.from_numpy(np.ascontiguousarray(array)))
        return cls(images, names)

    @classmethod
    def procedural(cls, count: int, height: int, width: int, seed: int = 0) -> ImageBank:
        """Synthetic scenes with edges, gradients, texture and colour (for tests and smoke runs):
        smooth colour washes, random rectangles and discs, and stripes."""
        gen = torch.Generator().manual_seed(seed)
        images = []
        ys = torch.linspace(0, 1, height)[:, None]
        xs = torch.linspace(0, 1, width)[None, :]
        for _ in range(count):
            coarse = torch.rand(3, 4, 4, generator=gen)
            img = F.interpolate(coarse[None], size=(height, width), mode="bicubic",
                                align_corners=True)[0]
            for _ in range(6):
                colour = torch.rand(3, 1, 1, generator=gen)
                cy, cx, r = torch.rand(3, generator=gen).tolist()
                if torch.rand(1, generator=gen).item() < 0.5:
                    mask = ((ys - cy) ** 2 + (xs - cx) ** 2) < (0.25 * r) ** 2
                else:
                    mask = ((ys - cy).abs() < 0.3 * r) & ((xs - cx).abs() < 0.2 + 0.2 * r)
                img = torch.where(mask, colour.expand_as(img), img)
            freq, angle = (torch.rand(2, generator=gen) * torch.tensor([40.0, math.pi])).tolist()
            stripes = torch.sin((xs * math.cos(angle) + ys * math.sin(angle)) * freq * 2 * math.pi)
            img = (img + 0.08 * stripes).clamp(0, 1)
            images.append((img.permute(1, 2, 0) * 255).round().to(torch.uint8))
        return cls(images, [f"procedural_{i:04d}" for i in range(count)])

    # --- persistence --------------------------------------------------------------------------

    def save_cache(
        self,
        path: str | os.PathLike,
        encoding: str = "raw",
        quality: int = 95,
        sources: Sequence[str] = (),
    ) -> int:
        """Write all images into one safetensors file; returns its size in bytes.

        encoding "raw" stores the pixels, "jpeg" stores JPEG bytes (about 8x smaller, decoded
        once when loaded). `sources` (where the images came from) is kept for provenance."""
        blobs, shapes = [], []
        for image in self.images:
            array = image.numpy()
            shapes.append(list(array.shape))
            if encoding == "jpeg":
                blobs.append(np.frombuffer(_encode_jpeg(array, quality), dtype=np.uint8))
            elif encoding == "raw":
                blobs.append(array.reshape(-1))
            else:
                raise ValueError(f"encoding must be 'raw' or 'jpeg', got {encoding!r}")
        offsets = np.cumsum([0] + [b.size for b in blobs])
        tensors = {
            "data": torch.from_numpy(np.concatenate(blobs)),
            "shapes": torch.tensor(shapes, dtype=torch.int64),
            "offsets": torch.from_numpy(offsets.astype(np.int64)),
        }
        meta = {"format": CACHE_FORMAT, "encoding": encoding, "names": json.dumps(self.names),
                "sources": json.dumps(list(sources))}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path.stat().st_size

    # --- split and sampling -------------------------------------------------------------------

    def split(self, val_fraction: float) -> tuple[ImageBank, ImageBank]:
        """(train, val) by hash of the split key; at least one validation key when
        val_fraction > 0 and there are two keys or more."""
        keys = [split_key(name) for name in self.names]
        scores = {key: key_hash(key) for key in keys}
        val_keys = {key for key, score in scores.items() if score < val_fraction}
        if val_fraction > 0 and not val_keys and len(scores) > 1:
            val_keys = {min(scores, key=scores.get)}
        if len(val_keys) == len(scores):
            val_keys.discard(max(scores, key=scores.get))
        train = [i for i, k in enumerate(keys) if k not in val_keys]
        val = [i for i, k in enumerate(keys) if k in val_keys]
        return self.subset(train), self.subset(val)

    def subset(self, indices: Sequence[int]) -> ImageBank:
        return ImageBank([self.images[i] for i in indices], [self.names[i] for i in indices])

    def to(self, device: torch.device | str) -> ImageBank:
        return ImageBank([image.to(device) for image in self.images], list(self.names))

    def sample_crops(
        self, batch: int, crop: int, gen: torch.Generator, min_scale: float = 0.35
    ) -> torch.Tensor:
        """[batch,3,crop,crop] float 0..1 crops on the images' device.

        Each crop takes a random image, a random square region of side crop/scale (scale drawn
        log-uniformly in [min_scale, 1], so the net sees several scales), downscaled to
        crop x crop with antialiasing, and a random horizontal flip. `gen` is a CPU generator.
        """
        if not self.images:
            raise DeflickerInputError("No training images to sample from.")
        crops = []
        for _ in range(batch):
            image = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
            h, w = image.shape[:2]
            u = torch.rand(4, generator=gen).tolist()
            scale = math.exp(math.log(min_scale) * u[0])
            side = min(h, w, max(crop, round(crop / scale)))
            y0 = int(u[1] * (h - side + 1))
            x0 = int(u[2] * (w - side + 1))
            region = image[y0 : y0 + side, x0 : x0 + side].permute(2, 0, 1).float() / 255.0
            if side != crop:
                region = F.interpolate(region[None], size=(crop, crop), mode="bilinear",
                                       antialias=True, align_corners=False)[0]
            if u[3] < 0.5:
                region = region.flip(-1)
            crops.append(region)
        return torch.stack(crops).clamp(0.0, 1.0)

    def describe(self) -> dict:
        pixels = sum(int(image.shape[0] * image.shape[1]) for image in self.images)
        return {"images": len(self), "megapixels": round(pixels / 1e6, 1),
                "clips": len({split_key(n) for n in self.names if "__" in n})}


def read_cache_sources(path: str | os.PathLike) -> list[str]:
    """The `sources` recorded in a cache file (empty if none)."""
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return json.loads((handle.metadata() or {}).get("sources", "[]"))


def split_key(name: str) -> str:
    return name.split("__", 1)[0]


def key_hash(key: str) -> float:
    """Uniform in [0, 1), stable across runs, machines and Python versions."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _read_image(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB")).copy())


def _decode_image_bytes(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.array(img.convert("RGB"))


def _encode_jpeg(array: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def resize_max_side(image: torch.Tensor, max_side: int) -> torch.Tensor:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = image.permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).contiguous()
