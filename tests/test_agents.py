"""The agent registry: one entry per algorithm, everything else derived from it."""

from __future__ import annotations

import inspect

import pytest

import robust_rl
from robust_rl.agents import AGENTS, get_agent, register_agent
from robust_rl.cli import build_parser
from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.evaluation.models import MODEL_CLASSES
from robust_rl.risk import EstimatorSpec
from robust_rl.training import ALGOS

#: what every robust agent adds to its SB3 parent: the estimator and the perturbation
ROBUST_ARGS = {*EstimatorSpec.keys(), "radius", "norm", "radius_scale", "unperturbed_keys"} | {
    "perturbation"
}
#: RobustDQN's own additions (the form of its target, its loss, batched targets)
DQN_ARGS = {"target_form", "td_loss", "target_batches"}


@pytest.mark.parametrize("name", [n for n, s in AGENTS.items() if s.parent is not None])
def test_a_robust_agent_takes_exactly_its_parents_arguments_plus_the_robust_ones(name):
    spec = AGENTS[name]
    mine = inspect.signature(spec.load().__init__).parameters
    parent = inspect.signature(AGENTS[spec.parent].load().__init__).parameters
    extra = ROBUST_ARGS | (DQN_ARGS if name == "robust-dqn" else set())
    assert set(mine) == set(parent) | extra
    for key, p in parent.items():  # same defaults, same order
        assert mine[key].default is p.default or mine[key].default == p.default, key
    assert [k for k in mine if k in parent] == list(parent)
    assert AGENTS[spec.parent].markers < spec.markers


def test_everything_is_derived_from_the_registry():
    trained = {n for n, s in AGENTS.items() if s.trains}
    assert set(ALGOS) == trained
    assert set(MODEL_CLASSES) == {n for n, s in AGENTS.items() if s.available()}
    assert all(s.requires == "sb3_contrib" for n, s in AGENTS.items() if n not in trained)
    for name, spec in AGENTS.items():
        if not spec.available():
            continue
        assert spec.load() is MODEL_CLASSES[name].cls
        if spec.trains:
            assert ALGOS[name] is spec.load()
        if spec.module.startswith("robust_rl."):
            assert getattr(robust_rl, spec.class_name) is spec.load()
            assert spec.class_name in robust_rl.__all__
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    train = sub.choices["train"]
    algo = next(a for a in train._actions if a.dest == "algo")
    assert sorted(algo.choices) == sorted(trained)


def test_register_agent_refuses_bad_entries_by_name():
    with pytest.raises(InvalidArgumentError, match="already registered"):
        register_agent("dqn", "x:Y", "x:Z", ())
    with pytest.raises(InvalidArgumentError, match="unknown parent 'nope'"):
        register_agent("mine", "x:Y", "x:Z", (), parent="nope")
    with pytest.raises(InvalidArgumentError, match="entry_point must be 'module:Class'"):
        register_agent("mine", "xY", "x:Z", ())
    assert "mine" not in AGENTS
    with pytest.raises(UnknownNameError, match="known: a2c, ars, crossq, dqn"):
        get_agent("nope")
