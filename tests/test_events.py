"""Event binning (nirjax.events): against an independent per-event count, against tonic's own
ToFrame when tonic is installed, and its errors. Events are generated; nothing is downloaded."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nirjax
from nirjax import events as ev

CAMERA = [("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)]
AUDIO = [("x", np.int64), ("t", np.int64), ("p", np.int64)]


def _count(samples, sensor_size, step_us, n_steps, t_start=0):
    """Independent oracle: a Python loop over the events with integer arithmetic.
    frames[k, b, p, y, x] += 1 for t in [t_start + k*step, t_start + (k+1)*step)."""
    w, h, p_n = sensor_size
    out = np.zeros((n_steps, len(samples), p_n, h, w))
    for b, e in enumerate(samples):
        for row in e:
            k = (int(row["t"]) - t_start) // step_us
            if 0 <= k < n_steps:
                y = int(row["y"]) if "y" in e.dtype.names else 0
                p = int(row["p"]) if p_n > 1 else 0
                out[k, b, p, y, int(row["x"])] += 1
    return out


def test_camera_batch_matches_per_event_count():
    rng = np.random.default_rng(1)
    size = (5, 4, 2)
    samples = [ev.make_events(rng, size, n, 2_000, sort=False) for n in (300, 0, 57)]
    frames = ev.to_frames(samples, size, dt=1e-4, n_steps=20)  # 100 us steps
    assert frames.shape == (20, 3, 2, 4, 5) and frames.dtype == np.float32
    np.testing.assert_array_equal(frames, _count(samples, size, 100, 20))
    assert frames.sum() == 357  # every event is inside [0, 2000 us)
    assert frames[:, 1].sum() == 0


def test_audio_events_flatten_polarity_major():
    rng = np.random.default_rng(2)
    size = (7, 1, 2)
    samples = [ev.make_events(rng, size, 200, 1_000) for _ in range(2)]
    assert "y" not in samples[0].dtype.names
    frames = ev.to_frames(samples, size, dt=5e-5, t_start=100, t_stop=900)
    assert frames.shape == (16, 2, 14)  # 800 us / 50 us; N = P * W
    expected = _count(samples, size, 50, 16, t_start=100).reshape(16, 2, 14)
    np.testing.assert_array_equal(frames, expected)
    outside = sum(int(np.sum((e["t"] < 100) | (e["t"] >= 900))) for e in samples)
    assert ev.count_outside(samples, 5e-5, t_start=100, t_stop=900) == outside > 0
    assert frames.sum() == 400 - outside


def test_step_boundaries_are_exact():
    # 1e-4 / 1e-6 is 99.99999999999999 in floating point: an event at exactly 300 us must
    # still land in step 3, not 2
    e = np.zeros(4, dtype=CAMERA)
    e["t"] = [0, 99, 100, 300]
    frames = ev.to_frames(e, (1, 1, 1), dt=1e-4)
    assert frames[:, 0, 0, 0, 0].tolist() == [2.0, 1.0, 0.0, 1.0]
    # float time stamps in seconds
    e2 = np.zeros(2, dtype=[("x", int), ("t", float), ("p", int)])
    e2["t"] = [0.0003, 0.00029]
    frames2 = ev.to_frames(e2, (1, 1, 1), dt=1e-4, time_unit=1.0)
    assert frames2[:, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_default_window_covers_the_last_event():
    e = np.zeros(2, dtype=CAMERA)
    e["t"] = [10, 1_050]
    frames = ev.to_frames([e, e[:1]], (1, 1, 1), dt=1e-4)
    assert frames.shape[0] == 11 and frames.sum() == 3


def test_single_polarity_sensor_ignores_p_like_tonic():
    e = np.zeros(3, dtype=CAMERA)
    e["p"] = 1
    e["t"] = [0, 1, 2]
    assert ev.to_frames(e, (1, 1, 1), dt=1e-4)[0].sum() == 3
    e["p"] = [0, 1, 1]
    with pytest.raises(nirjax.InputError, match="one polarity"):
        ev.to_frames(e, (1, 1, 1), dt=1e-4)


@pytest.mark.parametrize("field, value, message", [
    ("x", 5, "'x'"), ("y", -1, "'y'"), ("p", -1, "(p + 1) // 2"), ("p", 2, "'p'")])
def test_addresses_outside_the_sensor_are_errors(field, value, message):
    e = np.zeros(2, dtype=CAMERA)
    e[field][1] = value
    with pytest.raises(nirjax.InputError, match=re_escape(message)) as info:
        ev.to_frames(e, (5, 3, 2), dt=1e-4)
    assert "sensor_size" in str(info.value)


def re_escape(text):
    import re

    return re.escape(text)


def test_bad_arguments():
    e = np.zeros(1, dtype=AUDIO)
    with pytest.raises(nirjax.InputError, match="height"):
        ev.to_frames(e, (1, 2, 1), dt=1e-4)
    with pytest.raises(nirjax.InputError, match="sensor_size"):
        ev.to_frames(e, (1, 1), dt=1e-4)
    with pytest.raises(nirjax.InputError, match="dt"):
        ev.to_frames(e, (1, 1, 1), dt=0)
    with pytest.raises(nirjax.InputError, match="fields"):
        ev.to_frames(np.zeros(3, dtype=[("a", int)]), (1, 1, 1), dt=1e-4)
    with pytest.raises(nirjax.InputError, match="empty"):
        ev.to_frames([], (1, 1, 1), dt=1e-4)
    with pytest.raises(nirjax.InputError, match="not both"):
        ev.to_frames(e, (1, 1, 1), dt=1e-4, n_steps=3, t_stop=10)
    with pytest.raises(nirjax.InputError, match="no event"):
        ev.to_frames(np.zeros(0, dtype=AUDIO), (1, 1, 1), dt=1e-4)


def test_load_events(tmp_path):
    rng = np.random.default_rng(3)
    a, b = (ev.make_events(rng, (4, 4, 2), 10, 500) for _ in range(2))
    np.save(tmp_path / "one.npy", a)
    np.savez(tmp_path / "two.npz", s0=a, s1=b)
    (one,) = ev.load_events(tmp_path / "one.npy")
    np.testing.assert_array_equal(one, a)
    two = ev.load_events(tmp_path / "two.npz")
    assert [len(x) for x in two] == [10, 10]
    np.testing.assert_array_equal(two[1], b)
    np.save(tmp_path / "dense.npy", np.zeros((3, 4)))
    with pytest.raises(nirjax.InputError, match="t, x, p"):
        ev.load_events(tmp_path / "dense.npy")


def test_agrees_with_tonic_to_frame():
    tonic_frame = pytest.importorskip("tonic.functional", reason="tonic is not installed "
                                      "(pip install 'nirjax[events]')")
    rng = np.random.default_rng(4)
    for size, duration in (((6, 5, 2), 3_000), ((9, 1, 2), 2_000)):
        e = ev.make_events(rng, size, 500, duration)  # tonic needs time-sorted events
        if size[1] == 1:
            e = e[["x", "t", "p"]] if "y" in e.dtype.names else e
        window_us, steps = 100, math.ceil(duration / 100)
        ours = ev.to_frames(e, size, dt=window_us * 1e-6, n_steps=steps)
        theirs = tonic_frame.to_frame_numpy(e.copy(), size, time_window=window_us,
                                            start_time=0, end_time=steps * window_us)
        assert theirs.shape[0] == steps
        np.testing.assert_array_equal(ours[:, 0].reshape(theirs.shape), theirs)


def test_module_doctests():
    import doctest

    assert doctest.testmod(ev).failed == 0
