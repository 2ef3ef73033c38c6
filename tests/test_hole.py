"""Known answers for vae.measures.analysis.hole_interpolation: the hole as a zero-shot test
(docs/measures.md, "The hole as a zero-shot test")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from vae.base.errors import UserError
from vae.base.fileio import jsonable
from vae.measures.analysis import hole_interpolation, hole_of_spec, hole_test

CENTRE, RADIUS = np.array([1.25, 1.0]), 0.3


def draws(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0.5, 2.0, n), rng.uniform(0.0, 2.0, n)])


def linear(f):
    return np.column_stack([f[:, 0], f[:, 1], np.zeros(len(f))])


def gently_curved(f):
    return np.column_stack([np.sin(1.2 * f[:, 0]), 0.5 * f[:, 1] + 0.2 * f[:, 0] ** 2, 0.3 * np.cos(f[:, 1])])


def setup(sheet, noise, seed=0):
    """Training draws outside the hole; evaluated: every hole draw plus fresh covered draws."""
    rng = np.random.default_rng(seed)
    ab = draws(5000, seed)
    inside = np.hypot(*(ab - CENTRE).T) <= RADIUS
    train = ab[~inside]
    fresh = draws(600, seed + 1)
    evaluated = np.vstack([ab[inside], fresh[np.hypot(*(fresh - CENTRE).T) > RADIUS]])
    extent = np.ptp(sheet(ab), axis=0).max()
    codes_train = sheet(train) + noise * extent * rng.normal(size=(len(train), 3))
    codes_eval = sheet(evaluated) + noise * extent * rng.normal(size=(len(evaluated), 3))
    return train, codes_train, evaluated, codes_eval, int(inside.sum())


@pytest.mark.parametrize("sheet", [linear, gently_curved])
@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_a_smooth_sheet_predicts_the_hole(sheet, noise):
    train, ctr, ev, cev, _ = setup(sheet, noise)
    out = hole_interpolation(ctr, train, cev, ev)
    assert out["hole_error"] <= 0.15  # the worst annulus; snapped codes score >= 0.25 (below)
    assert out["n_hole"] > 400 and out["n_ring"] > 50 and out["diameter"] > 0
    json.dumps(jsonable(out))


def test_the_linear_map_is_exact():
    train, ctr, ev, cev, _ = setup(linear, 0.0)
    out = hole_interpolation(ctr, train, cev, ev)
    assert out["hole_error"] < 1e-3 and out["ring_error"] < 1e-3
    assert out["diameter"] == pytest.approx(0.6, rel=1e-3)  # the map is the identity on (a, b)


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_hole_codes_snapped_to_the_nearest_training_code_score_worse(noise):
    train, ctr, ev, cev, n_hole = setup(linear, noise)
    nearest = NearestNeighbors(n_neighbors=1).fit(train).kneighbors(ev[:n_hole])[1][:, 0]
    snapped = cev.copy()
    snapped[:n_hole] = ctr[nearest]  # memorisation: each hole image gets a seen image's code
    out = hole_interpolation(ctr, train, snapped, ev)
    assert out["hole_error"] >= 0.25
    assert out["ratio"] > 2


@pytest.mark.parametrize("sheet", [linear, gently_curved])
def test_hole_codes_collapsed_onto_a_far_code_score_at_least_one(sheet):
    train, ctr, ev, cev, n_hole = setup(sheet, 0.02)
    collapsed = cev.copy()
    collapsed[:n_hole] = ctr[np.argmin(train.sum(axis=1))]  # one training code for all hole images
    assert hole_interpolation(ctr, train, collapsed, ev)["hole_error"] >= 1.0


@pytest.mark.parametrize("where,implied", [("centre", 1 / 3), ("rim", 0.566)])
def test_collapse_onto_one_code_scores_at_least_the_error_it_implies(where, implied):
    """Uniform disc of radius r: mean distance to the centre 2r/3 (1/3 of the diameter), to a rim
    point 32r/(9 pi) (0.566 of the diameter)."""
    train, ctr, ev, cev, n_hole = setup(linear, 0.0)
    point = CENTRE if where == "centre" else CENTRE + [RADIUS, 0.0]
    collapsed = cev.copy()
    collapsed[:n_hole] = linear(point[None])[0]
    out = hole_interpolation(ctr, train, collapsed, ev)
    mean_distance = np.mean(np.linalg.norm(linear(ev[:n_hole]) - linear(point[None]), axis=1)) / out["diameter"]
    assert mean_distance == pytest.approx(implied, abs=0.03)
    assert out["hole_error"] >= mean_distance


def test_a_defect_in_the_inner_half_of_the_hole_is_caught():
    """A Gaussian bump (height 0.8 diameters, width 0.12) at the hole's centre: the median over the
    disc hid it (0.024 on the seed data); the inner annulus shows it, and the profile says where."""
    train, ctr, ev, cev, n_hole = setup(linear, 0.02)
    dist = np.hypot(*(ev[:n_hole] - CENTRE).T)
    bumped = cev.copy()
    bumped[:n_hole, 2] += 0.8 * 2 * RADIUS * np.exp(-(dist**2) / (2 * 0.12**2))
    out = hole_interpolation(ctr, train, bumped, ev)
    clean = hole_interpolation(ctr, train, cev, ev)
    assert out["hole_error"] >= 0.4 and clean["hole_error"] <= 0.1
    profile = out["profile"]
    assert len(profile) == 4 and sum(p["n"] for p in profile) == out["n_hole"]
    assert profile[-1]["from_rim_hi"] == pytest.approx(RADIUS) and profile[-1]["excess"] == out["hole_error"]
    assert [p["rms"] for p in profile] == sorted(p["rms"] for p in profile)  # worse towards the centre


@pytest.mark.parametrize("sheet", [linear, gently_curved])
@pytest.mark.parametrize("noise", [0.05, 0.1])
def test_smooth_stays_below_snapped_at_the_same_code_noise(sheet, noise):
    for seed in (0, 1):
        train, ctr, ev, cev, n_hole = setup(sheet, noise, seed)
        nearest = NearestNeighbors(n_neighbors=1).fit(train).kneighbors(ev[:n_hole])[1][:, 0]
        snapped = cev.copy()
        snapped[:n_hole] = ctr[nearest]
        smooth = hole_interpolation(ctr, train, cev, ev)["hole_error"]
        assert smooth < hole_interpolation(ctr, train, snapped, ev)["hole_error"]


def test_hole_interpolation_rejects_mismatched_input():
    with pytest.raises(UserError, match="dims"):
        hole_interpolation(np.zeros((10, 3)), draws(10, 0), np.zeros((2, 2)), draws(2, 1))
    with pytest.raises(UserError, match="centre"):
        hole_interpolation(np.zeros((10, 3)), draws(10, 0), np.zeros((2, 3)), draws(2, 1), centre=(1.0,))


def test_hole_test_measures_around_the_datasets_own_hole():
    """The pages' and evaluate's set-up: fitted on training codes, evaluated on hole + validation codes, with
    the hole the dataset's spec names (the study's when it names none)."""
    assert hole_of_spec(None) == hole_of_spec({}) == ((1.25, 1.0), 0.3)
    spec = {"hole_center": [0.9, 1.4], "hole_radius": 0.25}
    assert hole_of_spec(spec) == ((0.9, 1.4), 0.25)
    ab = draws(3000, 3)
    inside = np.hypot(ab[:, 0] - 0.9, ab[:, 1] - 1.4) <= 0.25
    train, hole, val = ab[~inside][:2400], ab[inside], ab[~inside][2400:]
    out = hole_test(linear(train), train, linear(hole), hole, linear(val), val, spec)
    assert out["n_hole"] == len(hole) and list(out["center"]) == [0.9, 1.4] and out["radius"] == 0.25
    assert out["hole_error"] < 1e-3  # a linear sheet predicts its hole exactly
    direct = hole_interpolation(
        linear(train), train, linear(np.vstack([hole, val])), np.vstack([hole, val]), centre=(0.9, 1.4), radius=0.25
    )
    assert out["ring_error"] == direct["ring_error"] and out["n_ring"] == direct["n_ring"]
