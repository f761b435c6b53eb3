"""Bad input at scale: generated batches, magnitudes and transform names through the 8 transforms.

Any batch of finite beats (any number, any width, any padding, with or without a channel axis) gives
float32 outputs of its shape, finite, with the padding rules kept, reproducible from the seed; a batch,
transform or magnitude that cannot be used fails with the project's one-line error.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ecg_mlflow.errors import UserError
from ecg_mlflow.transforms import (
    N_TRANSFORMS,
    TRANSFORM_NAMES,
    TransformConfig,
    apply_transform,
    beat_lengths,
    build_representation_set,
    synthetic_beats,
    transform_index,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RANDOM_TRANSFORMS = frozenset({TRANSFORM_NAMES.index("noise"), TRANSFORM_NAMES.index("shuffle")})
DETERMINISTIC = [i for i in range(N_TRANSFORMS) if i not in RANDOM_TRANSFORMS]
STRETCH, SQUEEZE = TRANSFORM_NAMES.index("stretch"), TRANSFORM_NAMES.index("squeeze")
CONFIG_BOUNDS = {
    "noise_std": (0.0, 1.0),
    "shuffle_segments": (2, 32),
    "stretch_factor": (1.0, 8.0),
    "squeeze_factor": (0.05, 1.0),
    "scale_factor": (0.0, 1.0),
}

configs = st.builds(
    TransformConfig,
    noise_std=st.floats(0.0, 1.0, exclude_min=True),
    shuffle_segments=st.integers(2, 32),
    stretch_factor=st.floats(1.0, 8.0, exclude_min=True),
    squeeze_factor=st.floats(0.05, 1.0, exclude_max=True),
    scale_factor=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
)
transforms = st.one_of(st.integers(0, N_TRANSFORMS - 1), st.sampled_from(TRANSFORM_NAMES))
seeds = st.integers(0, 2**32 - 1)


@st.composite
def beat_batches(draw: st.DrawFn) -> np.ndarray:
    """float32 (n, width) beats with zero padding after a random length: Kaggle-like, noise, constant,
    tiny or drawn value by value."""
    n = draw(st.integers(0, 10))
    width = draw(st.integers(1, 220))
    kind = draw(st.sampled_from(["kaggle", "uniform", "constant", "tiny", "drawn"]))
    rng = np.random.default_rng(draw(seeds))
    if kind == "kaggle":
        beats = synthetic_beats(n, rng, width=max(width, 3))[:, :width]
    elif kind == "uniform":
        beats = rng.uniform(-5.0, 5.0, size=(n, width)).astype(np.float32)
    elif kind == "constant":
        beats = np.full((n, width), draw(st.floats(-5.0, 5.0, width=32)), dtype=np.float32)
    elif kind == "tiny":
        beats = (rng.standard_normal((n, width)) * 1e-30).astype(np.float32)
    else:
        beats = draw(arrays(np.float32, (min(n, 3), min(width, 12)), elements=st.floats(-5.0, 5.0, width=32)))
    lengths = np.asarray(draw(st.lists(st.integers(0, beats.shape[1]), min_size=len(beats), max_size=len(beats))))
    beats[np.arange(beats.shape[1])[None, :] >= lengths.reshape(-1, 1)] = 0.0
    return beats


@SETTINGS
@given(beats=beat_batches(), transform=transforms, config=configs, seed=seeds, channel_axis=st.booleans())
def test_every_transform_keeps_shape_dtype_finiteness_and_padding(
    beats: np.ndarray, transform: int | str, config: TransformConfig, seed: int, channel_axis: bool
) -> None:
    """Any transform of any finite batch: float32 of the batch's (n, width), finite, zero past the
    (possibly resampled) length, and what the transform promises of the unpadded part."""
    batch = beats[:, :, None] if channel_axis else beats
    out = apply_transform(batch, transform, config, np.random.default_rng(seed))
    assert out.shape == beats.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    index = transform_index(transform)
    lengths = beat_lengths(beats)
    factor = {STRETCH: config.stretch_factor, SQUEEZE: config.squeeze_factor}.get(index)
    kept = lengths if factor is None else np.where(lengths > 0, np.maximum(np.rint(lengths * factor), 1), 0).astype(int)
    assert np.all(out[np.arange(beats.shape[1])[None, :] >= kept[:, None]] == 0)
    name = TRANSFORM_NAMES[index]
    for beat, result, length, resampled in zip(beats, out, lengths, kept, strict=True):
        part = beat[:length]
        if name in ("original", "negation", "inversion"):
            expected = {"original": part, "negation": -part, "inversion": part[::-1]}[name]
            np.testing.assert_array_equal(result[:length], expected)
        elif name == "shuffle":
            np.testing.assert_array_equal(np.sort(result[:length]), np.sort(part))  # the same samples, reordered
        elif name == "scale":
            np.testing.assert_allclose(result, beat * np.float32(config.scale_factor), rtol=1e-6)
        elif name in ("stretch", "squeeze") and length:
            assert result[0] == part[0]  # starts at the R peak
            tolerance = 1e-6 * max(1.0, float(np.abs(part).max()))  # linear interpolation stays within the beat
            inside = result[:resampled]
            assert np.all((inside >= part.min() - tolerance) & (inside <= part.max() + tolerance))


@SETTINGS
@given(beats=beat_batches(), transform=transforms, config=configs, seed=seeds, other_seed=seeds)
def test_the_seed_alone_decides_the_output(
    beats: np.ndarray, transform: int | str, config: TransformConfig, seed: int, other_seed: int
) -> None:
    """Same seed -> the same output, with or without a channel axis; the deterministic transforms
    ignore the seed and treat each beat alone (its output does not depend on the rest of the batch)."""
    first = apply_transform(beats, transform, config, np.random.default_rng(seed))
    again = apply_transform(beats[:, :, None], transform, config, np.random.default_rng(seed))
    np.testing.assert_array_equal(first, again)
    index = transform_index(transform)
    if index in RANDOM_TRANSFORMS:
        other = apply_transform(beats, transform, config, np.random.default_rng(other_seed))
        fresh = seed != other_seed and config.noise_std > 1e-3 and beat_lengths(beats).sum() > 8
        if TRANSFORM_NAMES[index] == "noise" and fresh:
            assert not np.array_equal(first, other)  # noise visible in float32, drawn afresh
        return
    np.testing.assert_array_equal(first, apply_transform(beats, transform, config, np.random.default_rng(other_seed)))
    for i in range(len(beats)):
        alone = apply_transform(beats[i : i + 1], transform, config, np.random.default_rng(other_seed))
        np.testing.assert_array_equal(first[i], alone[0])


@SETTINGS
@given(beats=beat_batches(), config=configs, seed=seeds)
def test_representation_set_is_every_version_of_every_beat_reproducibly(
    beats: np.ndarray, config: TransformConfig, seed: int
) -> None:
    """build_representation_set: (8n, width) float32 finite, one-hot labels in transform order, the
    deterministic rows equal to apply_transform, and the same seed (fresh or reused buffer) -> same set."""
    x, y = build_representation_set(beats, config, np.random.default_rng(seed))
    n, width = beats.shape
    assert x.shape == (N_TRANSFORMS * n, width) and x.dtype == np.float32 and np.isfinite(x).all()
    assert y.shape == (N_TRANSFORMS * n, N_TRANSFORMS) and np.array_equal(y.sum(axis=1), np.ones(len(y)))
    assert np.array_equal(y.argmax(axis=1), np.tile(np.arange(N_TRANSFORMS), n))
    for index in DETERMINISTIC:
        expected = apply_transform(beats, index, config, np.random.default_rng(1))
        np.testing.assert_array_equal(x[index::N_TRANSFORMS], expected)
    again, _ = build_representation_set(beats, config, np.random.default_rng(seed), out=np.ones_like(x))
    np.testing.assert_array_equal(x, again)


def assert_one_line_error(error: BaseException, *names: str) -> None:
    """The project's error: a UserError, one non-empty line, naming one of `names` (when given)."""
    assert isinstance(error, UserError), f"{type(error).__name__} instead of a UserError: {error}"
    message = str(error)
    assert message.strip() and "\n" not in message, repr(message)
    if names:
        assert any(name in message or repr(name) in message for name in names), message


shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
selectors = st.one_of(
    st.integers(-20, 20),
    st.text(max_size=12),
    st.sampled_from(TRANSFORM_NAMES),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
)


@SETTINGS
@given(
    shape=shapes,
    dtype=st.sampled_from(["float32", "float64", "int64", "bool", "str"]),
    transform=selectors,
    config=configs,
)
@example(shape=(3, 0), dtype="float32", transform=0, config=TransformConfig())  # was numpy's argmax ValueError
@example(shape=(2, 5), dtype="str", transform=0, config=TransformConfig())  # was numpy's float ValueError
@example(shape=(2, 5), dtype="float32", transform=None, config=TransformConfig())  # was int()'s TypeError
@example(shape=(2, 5), dtype="float32", transform=1.5, config=TransformConfig())  # was taken as transform 1
def test_any_batch_shape_or_transform_selector_is_used_or_refused_in_one_line(
    shape: tuple[int, ...], dtype: str, transform: object, config: TransformConfig
) -> None:
    """Batches of any shape and dtype, transforms selected by anything: a (n, width) float32 result, or
    the project's one-line error (naming the transform or the beats)."""
    beats = np.ones(shape, dtype=dtype) if dtype != "str" else np.full(shape, "beat")
    try:
        out = apply_transform(beats, transform, config, np.random.default_rng(0))
    except Exception as error:  # the property: which exceptions escape
        assert_one_line_error(error, "transform", "beats")
        return
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] >= 1 and np.isfinite(out).all()
    assert out.shape == shape[:2]
    assert isinstance(transform, str) or (isinstance(transform, int) and 0 <= transform < N_TRANSFORMS)


magnitudes = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.text(max_size=8),
    st.sampled_from(["0.1", "3", "2e4", "20.0", "nan", "inf", "1e400", " 4 ", "true"]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 3), max_size=2),
)
config_kwargs = st.dictionaries(
    st.one_of(st.sampled_from(sorted(CONFIG_BOUNDS)), st.text(min_size=1, max_size=10)), magnitudes, max_size=4
)


@settings(max_examples=150, deadline=None)
@given(kwargs=config_kwargs)
def test_any_transform_magnitudes_build_a_config_in_bounds_or_fail_naming_the_field(kwargs: dict) -> None:
    """TransformConfig from generated keyword arguments (as MLproject, the CLI and studies pass them):
    every field in its declared range, or one line naming the parameter."""
    try:
        config = TransformConfig(**kwargs)
    except Exception as error:  # the property: which exceptions escape
        assert_one_line_error(error, *kwargs)
        return
    assert set(kwargs) <= set(CONFIG_BOUNDS)
    for name, (low, high) in CONFIG_BOUNDS.items():
        value = getattr(config, name)
        assert low <= value <= high and np.isfinite(value), (name, value)
    assert isinstance(config.shuffle_segments, int)
