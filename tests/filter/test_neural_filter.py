"""Specification of the NeuralFilter stage: network, weights files, clip-level filtering, training.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deflicker_impl.errors import DeflickerInputError, WeightsError
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter, load_neural_filter
from deflicker_impl.filter.net import FilterNetConfig, build_neural_filter
from deflicker_impl.train.image_bank import ImageBank
from deflicker_impl.train.pairs import distort_structure
from deflicker_impl.weights import count_parameters, default_weights_path, save_weights

pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread, see conftest.py


SMALL = FilterNetConfig(widths=(8, 12, 16), head_width=8)
SHIPPED = default_weights_path("neural_filter.safetensors")


def clip(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """[t,h,w,3] float clip of procedural scenes."""
    bank = ImageBank.procedural(t, h, w, seed=seed)
    return torch.stack(bank.images).float() / 255


def scrambled_net(config: FilterNetConfig = SMALL, seed: int = 0):
    """A net whose output depends on both inputs (random weights everywhere, also the head)."""
    torch.manual_seed(seed)
    net = build_neural_filter(config).eval()
    with torch.no_grad():
        last = net.head[-1]
        last.weight.normal_(0, 0.05)
    return net


def pointwise_net(config: FilterNetConfig = SMALL):
    """A net that maps every pixel by the same fixed colour transform (no spatial context)."""
    net = build_neural_filter(config).eval()
    with torch.no_grad():
        net.head[-1].bias.copy_(torch.tensor([0.5, 0.1, 0, 0.1, 0, 0.7, 0, 0.05,
                                              0.2, 0, 0.6, -0.02]))
    return net


# --- network ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(8, 8), (37, 53), (1, 1), (5, 70)])
def test_output_has_the_input_size_for_any_frame_size(size):
    net = scrambled_net()
    frames, atlas = clip(2, *size), clip(2, *size, seed=1)
    out = apply_neural_filter(frames, atlas, net=net)
    assert out.shape == (2, *size, 3) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_untrained_net_returns_the_frame_unchanged():
    net = build_neural_filter(SMALL).eval()
    frames, atlas = clip(2, 33, 47), clip(2, 33, 47, seed=1)
    assert torch.allclose(apply_neural_filter(frames, atlas, net=net), frames, atol=1e-6)


def test_filtering_is_deterministic_and_independent_of_chunking():
    net = scrambled_net()
    frames, atlas = clip(5, 40, 48), clip(5, 40, 48, seed=1)
    a = apply_neural_filter(frames, atlas, FilterConfig(chunk_size=2), net=net)
    b = apply_neural_filter(frames, atlas, FilterConfig(chunk_size=2), net=net)
    c = apply_neural_filter(frames, atlas, FilterConfig(chunk_size=5), net=net)
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-5)
    assert not torch.allclose(a, frames, atol=1e-3)  # the scrambled net does change the frames


def test_tiles_blend_to_exactly_the_whole_frame_result_for_a_pointwise_filter():
    net = pointwise_net()
    frames, atlas = clip(2, 150, 230), clip(2, 150, 230, seed=1)
    whole = apply_neural_filter(frames, atlas, FilterConfig(tile_size=0), net=net)
    tiled = apply_neural_filter(frames, atlas, FilterConfig(tile_size=64, tile_overlap=16),
                                net=net)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_tiled_result_of_a_context_dependent_filter_stays_close():
    net = scrambled_net()
    frames, atlas = clip(1, 150, 230), clip(1, 150, 230, seed=1)
    whole = apply_neural_filter(frames, atlas, FilterConfig(tile_size=0), net=net)
    tiled = apply_neural_filter(frames, atlas, FilterConfig(tile_size=96, tile_overlap=32),
                                net=net)
    mse = float(((tiled - whole) ** 2).mean())
    assert -10 * torch.log10(torch.tensor(mse)) > 35.0


def test_progress_reports_frames_and_a_raising_callback_cancels():
    net = scrambled_net()
    frames, atlas = clip(5, 16, 16), clip(5, 16, 16, seed=1)
    calls = []
    apply_neural_filter(frames, atlas, FilterConfig(chunk_size=2), lambda d, t: calls.append(
        (d, t)), net=net)
    assert calls[-1] == (5, 5) and [d for d, _ in calls] == sorted(d for d, _ in calls)

    def cancel(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_neural_filter(frames, atlas, FilterConfig(chunk_size=2), cancel, net=net)


def test_uint8_grayscale_and_rgba_inputs_are_accepted():
    net = scrambled_net()
    frames = (clip(2, 20, 24) * 255).to(torch.uint8)
    atlas = torch.cat([clip(2, 20, 24, seed=1), torch.ones(2, 20, 24, 1)], dim=-1)
    assert apply_neural_filter(frames, atlas, net=net).shape == (2, 20, 24, 3)
    gray = clip(2, 20, 24)[..., :1]
    assert apply_neural_filter(gray, gray, net=net).shape == (2, 20, 24, 3)


@pytest.mark.parametrize(
    "frames_shape, atlas_shape, words",
    [
        ((3, 16, 16, 3), (2, 16, 16, 3), "frame count or size"),
        ((2, 16, 16, 3), (2, 16, 17, 3), "frame count or size"),
        ((2, 3, 16, 16), (2, 3, 16, 16), "permuted"),
        ((16, 16, 3), (16, 16, 3), "[frames, height, width, 3]"),
    ],
)
def test_bad_shapes_are_refused_with_a_clear_message(frames_shape, atlas_shape, words):
    with pytest.raises(DeflickerInputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        apply_neural_filter(torch.rand(frames_shape), torch.rand(atlas_shape),
                            net=scrambled_net())


def test_nan_frames_are_refused_naming_the_frame():
    atlas = clip(4, 16, 16)
    frames = atlas.clone()
    frames[2, 3, 3, 1] = float("nan")
    with pytest.raises(DeflickerInputError, match="frames frame 2 contains NaN"):
        apply_neural_filter(frames, atlas, FilterConfig(chunk_size=3), net=scrambled_net())


def test_the_default_network_stays_small():
    # Its speed is measured by bench/profile_pipeline.py, not here; its size bounds that cost.
    assert count_parameters(build_neural_filter()) < 1_500_000


def test_the_loaded_net_runs_channels_last_on_the_cpu_with_the_same_output():
    net = load_neural_filter(FilterConfig(device="cpu"))
    kernels = [p for p in net.parameters() if p.ndim == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert not all(p.is_contiguous() for p in kernels)
    frames, atlas = clip(2, 40, 56), clip(2, 40, 56, seed=1)
    fast = apply_neural_filter(frames, atlas, FilterConfig(device="cpu", global_window=0))
    plain = build_neural_filter(net.config).eval()
    plain.load_state_dict(net.state_dict())
    with torch.inference_mode():
        ref = plain(frames.permute(0, 3, 1, 2).contiguous(), atlas.permute(0, 3, 1, 2).contiguous())
    assert (fast - ref.permute(0, 2, 3, 1)).abs().max() < 1e-5


# --- weights files -----------------------------------------------------------------------------


def test_saved_weights_load_back_with_their_architecture(tmp_path):
    net = scrambled_net()
    path = save_weights(tmp_path / "f.safetensors", net, "neural_filter", {"steps": 3})
    loaded = load_neural_filter(FilterConfig(weights_path=path, device="cpu"))
    assert loaded.config == SMALL
    frames, atlas = clip(2, 24, 24), clip(2, 24, 24, seed=1)
    assert torch.equal(apply_neural_filter(frames, atlas, net=net),
                       apply_neural_filter(frames, atlas, FilterConfig(weights_path=path,
                                                                      device="cpu")))


def _expect_weights_error(path: Path, *words: str) -> None:
    with pytest.raises(WeightsError) as info:
        load_neural_filter(FilterConfig(weights_path=path, device="cpu"))
    message = str(info.value)
    assert str(path.name) in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_refused_on_the_cpu(dtype):
    with pytest.raises(DeflickerInputError, match="for GPUs"):
        load_neural_filter(FilterConfig(dtype=dtype, device="cpu"))


def test_missing_weights_file_names_the_file(tmp_path):
    _expect_weights_error(tmp_path / "absent.safetensors", "not found",
                          "weights/neural_filter.safetensors",
                          "python -m deflicker_impl.train filter")


def test_truncated_weights_file_names_the_file(tmp_path):
    path = save_weights(tmp_path / "cut.safetensors", scrambled_net(), "neural_filter")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect_weights_error(path, "truncated or corrupt")


def test_garbage_weights_file_names_the_file(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"this is not a safetensors file" * 10)
    _expect_weights_error(path, "cannot be read")


def test_wrong_shape_weights_file_names_the_file_and_tensor(tmp_path):
    path = save_weights(tmp_path / "shape.safetensors", scrambled_net(), "neural_filter")
    # Re-label the architecture so the tensors no longer fit the network it describes.
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        meta = f.metadata()
    meta["arch"] = FilterNetConfig(widths=(8, 12, 20), head_width=8).to_json()
    save_file(tensors, str(path), metadata=meta)
    _expect_weights_error(path, "shape", "downs.1")


def test_weights_of_another_network_kind_are_refused(tmp_path):
    path = save_weights(tmp_path / "refine.safetensors", scrambled_net(), "local_refine")
    _expect_weights_error(path, "local_refine", "neural_filter")


# --- shipped weights --------------------------------------------------------------------------


def test_shipped_weights_restore_colour_and_keep_structure():
    """On a flickering procedural clip with a structurally damaged but correctly coloured atlas,
    the shipped filter beats both inputs by a clear margin."""
    clean = clip(4, 96, 128, seed=11)
    flickering = add_synthetic_flicker(clean, window=1, seed=5, gain_sigma=0.25)
    nchw = clean.permute(0, 3, 1, 2)
    atlas = distort_structure(nchw, torch.Generator().manual_seed(5)).permute(0, 2, 3, 1)
    out = apply_neural_filter(flickering, atlas, FilterConfig(device="cpu"))

    def psnr(x):
        return float(-10 * torch.log10(((x - clean) ** 2).mean()))

    assert psnr(out) >= psnr(atlas) + 4.0
    assert psnr(out) >= psnr(flickering) + 4.0
