"""Each transform's defining property, on generated Kaggle-like beats (and real beats when available)."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.config import TRANSFORM_NAMES, TransformConfig
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.transforms import (
    apply_transform,
    beat_lengths,
    build_representation_set,
    plot_transforms,
    synthetic_beats,
    transform_index,
)

CONFIG = TransformConfig()


@pytest.fixture(scope="module")
def beats() -> np.ndarray:
    generated = synthetic_beats(300, np.random.default_rng(1))
    full = synthetic_beats(2, np.random.default_rng(2))
    full[:, :] = np.linspace(1.0, 0.2, BEAT_LENGTH, dtype=np.float32)  # no padding at all
    return np.concatenate([generated, full])


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _unpadded(beat: np.ndarray) -> np.ndarray:
    return beat[: beat_lengths(beat[None])[0]]


# --- beat_lengths -----------------------------------------------------------------------------


def test_beat_lengths_is_last_nonzero_index_plus_one() -> None:
    beats = np.zeros((4, 10), dtype=np.float32)
    beats[0, :3] = 1.0
    beats[1, [0, 6]] = 0.5  # an interior zero does not end the beat
    beats[2, :] = 0.3
    assert beat_lengths(beats).tolist() == [3, 7, 10, 0]


def test_generated_beats_look_like_kaggle(beats: np.ndarray) -> None:
    assert beats.dtype == np.float32 and beats.shape[1] == BEAT_LENGTH
    assert beats.min() >= 0.0 and beats.max() <= 1.0
    assert np.all(beats[:, 0] > 0.9)
    lengths = beat_lengths(beats)
    inside = np.arange(BEAT_LENGTH)[None, :] < lengths[:, None]
    assert np.all(beats[inside] > 0) and np.all(beats[~inside] == 0)


# --- the transforms' defining properties ----------------------------------------------------


@pytest.mark.parametrize("transform", list(range(8)) + list(TRANSFORM_NAMES))
def test_output_shape_dtype_and_padding_stays_zero(beats: np.ndarray, transform: int | str) -> None:
    out = apply_transform(beats, transform, CONFIG, _rng())
    assert out.shape == beats.shape and out.dtype == np.float32
    index = transform_index(transform)
    if index not in (5, 6):  # stretch and squeeze change the length; tested below
        padding = np.arange(BEAT_LENGTH)[None, :] >= beat_lengths(beats)[:, None]
        assert np.all(out[padding] == 0)


def test_original_is_an_unchanged_copy(beats: np.ndarray) -> None:
    out = apply_transform(beats, "original", CONFIG, _rng())
    np.testing.assert_array_equal(out, beats)
    assert not np.shares_memory(out, beats)


def test_negation_negates_and_keeps_the_padding(beats: np.ndarray) -> None:
    out = apply_transform(beats, "negation", CONFIG, _rng())
    np.testing.assert_array_equal(out, -beats)
    assert not np.signbit(out[beats == 0]).any()  # +0.0 padding, not -0.0
    np.testing.assert_array_equal(beat_lengths(out), beat_lengths(beats))


def test_inversion_reverses_only_the_unpadded_part(beats: np.ndarray) -> None:
    out = apply_transform(beats, "inversion", CONFIG, _rng())
    for beat, inverted in zip(beats, out, strict=True):
        length = beat_lengths(beat[None])[0]
        np.testing.assert_array_equal(inverted[:length], beat[:length][::-1])
        assert np.all(inverted[length:] == 0)
    np.testing.assert_array_equal(apply_transform(out, "inversion", CONFIG, _rng()), beats)


def test_noise_has_the_configured_std_on_the_unpadded_part(beats: np.ndarray) -> None:
    config = TransformConfig(noise_std=0.07)
    out = apply_transform(beats, "noise", config, _rng())
    inside = np.arange(BEAT_LENGTH)[None, :] < beat_lengths(beats)[:, None]
    added = (out - beats)[inside]
    assert abs(added.std() - 0.07) < 0.003
    assert abs(added.mean()) < 0.003


def test_noise_is_drawn_afresh_per_call_and_reproducible_per_seed(beats: np.ndarray) -> None:
    rng = _rng(5)
    first = apply_transform(beats, "noise", CONFIG, rng)
    second = apply_transform(beats, "noise", CONFIG, rng)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, apply_transform(beats, "noise", CONFIG, _rng(5)))


@pytest.mark.parametrize("segments", [2, 4, 7])
def test_shuffle_permutes_whole_segments_and_is_never_identity(beats: np.ndarray, segments: int) -> None:
    config = TransformConfig(shuffle_segments=segments)
    out = apply_transform(beats, "shuffle", config, _rng())
    for beat, shuffled in zip(beats, out, strict=True):
        length = beat_lengths(beat[None])[0]
        pieces = np.split(beat[:length], (length * np.arange(1, segments)) // segments)
        np.testing.assert_array_equal(np.sort(shuffled[:length]), np.sort(beat[:length]))  # same multiset
        assert np.all(shuffled[length:] == 0)
        assert not np.array_equal(shuffled[:length], beat[:length])  # not the identity
        # The output is the segments laid end to end in some order.
        rest = shuffled[:length]
        remaining = list(pieces)
        while rest.size:
            match = next(i for i, p in enumerate(remaining) if np.array_equal(rest[: p.size], p))
            rest = rest[remaining.pop(match).size :]
        assert not remaining


def test_shuffle_draws_a_new_order_per_call(beats: np.ndarray) -> None:
    rng = _rng(3)
    first = apply_transform(beats, "shuffle", CONFIG, rng)
    second = apply_transform(beats, "shuffle", CONFIG, rng)
    assert (first != second).any(axis=1).mean() > 0.5


def test_stretch_doubles_the_length_cropped_at_187(beats: np.ndarray) -> None:
    out = apply_transform(beats, "stretch", CONFIG, _rng())
    lengths = beat_lengths(beats)
    np.testing.assert_array_equal(beat_lengths(out), np.minimum(np.rint(lengths * 2.0), BEAT_LENGTH))
    np.testing.assert_allclose(out[:, 0], beats[:, 0])  # starts at the R peak
    # Linear interpolation: every second sample of a doubled beat lies on the original curve.
    for beat, stretched in zip(beats[:50], out[:50], strict=True):
        length = beat_lengths(beat[None])[0]
        x_new = np.arange(min(2 * length, BEAT_LENGTH)) * (length - 1) / (2 * length - 1)
        np.testing.assert_allclose(
            stretched[: x_new.size], np.interp(x_new, np.arange(length), beat[:length]), atol=1e-5
        )


def test_squeeze_halves_the_length(beats: np.ndarray) -> None:
    out = apply_transform(beats, "squeeze", CONFIG, _rng())
    lengths = beat_lengths(beats)
    np.testing.assert_array_equal(beat_lengths(out), np.rint(lengths * 0.5))
    assert np.all(out[:, BEAT_LENGTH // 2 + 1 :] == 0)
    np.testing.assert_allclose(out[:, 0], beats[:, 0])
    last = np.rint(lengths * 0.5).astype(int) - 1
    np.testing.assert_allclose(out[np.arange(len(out)), last], beats[np.arange(len(beats)), lengths - 1], atol=1e-6)


def test_scale_multiplies_the_amplitude(beats: np.ndarray) -> None:
    out = apply_transform(beats, "scale", CONFIG, _rng())
    np.testing.assert_allclose(out, beats * 0.1, rtol=1e-6)


def test_accepts_a_trailing_channel_axis(beats: np.ndarray) -> None:
    out = apply_transform(beats[:, :, None], "negation", CONFIG, _rng())
    assert out.shape == beats.shape


@pytest.mark.parametrize("bad", [8, -1, "rotation"])
def test_unknown_transform_is_refused(beats: np.ndarray, bad: int | str) -> None:
    with pytest.raises(ValueError, match="transform"):
        apply_transform(beats, bad, CONFIG, _rng())


def test_all_zero_beat_stays_zero() -> None:
    zeros = np.zeros((2, BEAT_LENGTH), dtype=np.float32)
    for index in range(8):
        out = apply_transform(zeros, index, CONFIG, _rng())
        if index != 3:
            assert np.all(out == 0)


# --- the representation set ---------------------------------------------------------------


def test_representation_set_holds_every_beat_in_all_8_versions(beats: np.ndarray) -> None:
    x, y = build_representation_set(beats, CONFIG, _rng(7))
    n = len(beats)
    assert x.shape == (8 * n, BEAT_LENGTH) and x.dtype == np.float32
    assert y.shape == (8 * n, 8) and y.dtype == np.float32
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(y.argmax(axis=1), np.tile(np.arange(8), n))
    for index in (0, 1, 2, 5, 6, 7):  # the deterministic ones match apply_transform exactly
        np.testing.assert_array_equal(x[index::8], apply_transform(beats, index, CONFIG, _rng()))


def test_representation_set_is_seeded_and_regenerated_per_epoch(beats: np.ndarray) -> None:
    x1, _ = build_representation_set(beats, CONFIG, _rng(11))
    x2, _ = build_representation_set(beats, CONFIG, _rng(11))
    np.testing.assert_array_equal(x1, x2)
    rng = _rng(11)
    epoch1, _ = build_representation_set(beats, CONFIG, rng)
    epoch1 = epoch1.copy()
    epoch2, _ = build_representation_set(beats, CONFIG, rng, out=epoch1 * 0)
    assert not np.array_equal(epoch1[3::8], epoch2[3::8])  # noise redrawn
    np.testing.assert_array_equal(epoch1[1::8], epoch2[1::8])  # negation is deterministic


def test_representation_set_chunks_agree_with_one_pass() -> None:
    many = synthetic_beats(9000, _rng(4))  # more than one chunk
    x, _ = build_representation_set(many, CONFIG, _rng())
    np.testing.assert_array_equal(x[2::8], apply_transform(many, "inversion", CONFIG, _rng()))
    np.testing.assert_array_equal(x[5::8], apply_transform(many, "stretch", CONFIG, _rng()))


def test_representation_set_refuses_a_wrong_out_buffer(beats: np.ndarray) -> None:
    with pytest.raises(ValueError, match="out must be"):
        build_representation_set(beats, CONFIG, _rng(), out=np.empty((3, BEAT_LENGTH), dtype=np.float32))


def test_plot_transforms_writes_a_png(tmp_path, beats: np.ndarray) -> None:
    path = plot_transforms(beats[0], CONFIG, tmp_path / "figs" / "transforms.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- real beats -------------------------------------------------------------------------


@pytest.mark.realdata
def test_transforms_on_real_beats(request: pytest.FixtureRequest) -> None:
    dataset = pytest.importorskip("ecg_mlflow.data.dataset")
    try:
        data_dir = request.getfixturevalue("real_data_dir")
    except pytest.FixtureLookupError:
        pytest.skip("no real_data_dir fixture (tests/conftest.py)")
    from ecg_mlflow.config import DataConfig

    ds = dataset.load_dataset(DataConfig(data_dir=str(data_dir), max_beats=500))
    lengths = beat_lengths(ds.train.x)
    assert np.median(lengths) > 60  # a beat is 1.2 R-R; a few are cut short at a 10 s window's end
    real = ds.train.x[lengths > 20][:500]
    lengths = beat_lengths(real)
    np.testing.assert_array_equal(apply_transform(real, "negation", CONFIG, _rng()), -real)
    np.testing.assert_array_equal(beat_lengths(apply_transform(real, "squeeze", CONFIG, _rng())), np.rint(lengths / 2))
    np.testing.assert_array_equal(
        beat_lengths(apply_transform(real, "stretch", CONFIG, _rng())), np.minimum(2 * lengths, BEAT_LENGTH)
    )
    shuffled = apply_transform(real, "shuffle", CONFIG, _rng())
    np.testing.assert_array_equal(np.sort(shuffled, axis=1), np.sort(real, axis=1))
    x, y = build_representation_set(real, CONFIG, _rng())
    assert x.shape == (8 * len(real), BEAT_LENGTH) and y.shape == (8 * len(real), 8)


def test_the_transform_table_is_what_heads_figure_and_configs_read() -> None:
    from dataclasses import fields

    from ecg_mlflow.config import DEFAULT_HEAD_WEIGHTS, TRANSFORM_NAMES, TransformConfig
    from ecg_mlflow.transforms import TRANSFORMS

    assert tuple(t.name for t in TRANSFORMS) == TRANSFORM_NAMES and len(DEFAULT_HEAD_WEIGHTS) == len(TRANSFORMS)
    magnitudes = [t.magnitude for t in TRANSFORMS if t.magnitude]
    assert sorted(magnitudes) == sorted(f.name for f in fields(TransformConfig))  # each knob belongs to one
    assert [t.name for t in TRANSFORMS[:3]] == ["original", "negation", "inversion"]  # head order never moves
