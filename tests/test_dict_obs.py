"""Dict observations: which entries the robust agents perturb (Box entries, per-key radius,
user exclusions; Discrete entries never), MultiInputPolicy and HerReplayBuffer workflows."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv

from robust_rl import RobustSAC, RobustTD3
from robust_rl.common import ObservationPerturbation, UnsupportedSpaceError
from robust_rl.common.observations import check_radius
from robust_rl.errors import InvalidArgumentError


class PointGoalEnv(gym.Env):
    """A point on a plane steered towards a goal; goal-conditioned (Box entries only)."""

    def __init__(self) -> None:
        box = spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {"observation": box, "achieved_goal": box, "desired_goal": box}
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2, dtype=np.float32)
        self._goal = np.zeros(2, dtype=np.float32)
        self._t = 0

    def _obs(self) -> dict:
        return {
            "observation": self._pos.copy(),
            "achieved_goal": self._pos.copy(),
            "desired_goal": self._goal.copy(),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self._goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        self._pos = np.clip(self._pos + 0.2 * np.asarray(action, dtype=np.float32), -2, 2)
        self._t += 1
        reward = float(self.compute_reward(self._pos, self._goal, {}))
        return self._obs(), reward, reward == 0.0, self._t >= 10, {}

    def compute_reward(self, achieved_goal, desired_goal, info):
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > 0.2).astype(np.float32)


class ModeEnv(gym.Env):
    """Dict observation with a Box entry and a Discrete entry, continuous actions."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {"vec": spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32), "mode": spaces.Discrete(3)}
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def _obs(self) -> dict:
        return {
            "vec": self.np_random.uniform(-1, 1, 3).astype(np.float32),
            "mode": int(self.np_random.integers(3)),
        }

    def step(self, action):
        self._t += 1
        return self._obs(), float(-abs(action[0])), False, self._t >= 8, {}


def _tiny() -> dict:
    return dict(
        learning_starts=30,
        batch_size=16,
        buffer_size=1000,
        policy_kwargs=dict(net_arch=[16]),
        device="cpu",
    )


# ------------------------------------------------------------------ ObservationPerturbation
def test_flat_vector_of_box_entries_with_per_key_radius():
    space = PointGoalEnv().observation_space
    p = ObservationPerturbation(
        space,
        check_radius({"observation": [0.1, 0.2], "achieved_goal": 0.3}),
        unperturbed_keys=["desired_goal"],
    )
    assert p.keys == ("achieved_goal", "observation")  # gymnasium sorts Dict keys
    np.testing.assert_array_equal(p.radius, [0.3, 0.3, 0.1, 0.2])
    obs = {k: th.arange(6, dtype=th.float32).reshape(3, 2) + i for i, k in enumerate(space)}
    flat = p.flatten(obs)
    assert flat.shape == (3, 4)
    index = th.tensor([2, 0, 0, 1])
    z = flat.index_select(0, index) + 100.0
    back = p.unflatten(z, obs, index)
    assert list(back) == list(obs)
    for k in p.keys:
        th.testing.assert_close(back[k], obs[k].index_select(0, index) + 100.0)
    th.testing.assert_close(back["desired_goal"], obs["desired_goal"].index_select(0, index))


def test_discrete_entries_are_never_perturbed_and_one_radius_covers_all_boxes():
    p = ObservationPerturbation(ModeEnv().observation_space, 0.25)
    assert p.keys == ("vec",) and p.dim == 3
    np.testing.assert_array_equal(p.radius, [0.25] * 3)


@pytest.mark.parametrize(
    ("radius", "unperturbed", "match"),
    [
        ({"observation": 0.1}, (), r"no value for the Box entries \['achieved_goal', 'desired_goal'\]"),
        ({"nope": 0.1, "observation": 0.1, "achieved_goal": 0.1, "desired_goal": 0.1}, (),
         r"unknown entries \['nope'\]"),
        ({"observation": [0.1, 0.2, 0.3], "achieved_goal": 0.1, "desired_goal": 0.1}, (),
         r"radius\['observation'\] has 3 values .* shape \(2,\)"),
        (0.1, ("observation", "achieved_goal", "desired_goal"), "no observation entry left"),
        (0.1, ("velocity",), r"unperturbed_keys \['velocity'\] are not entries"),
        ({"observation": 0.1, "achieved_goal": 0.1, "desired_goal": 0.1}, ("observation",),
         "both in radius and in unperturbed_keys"),
    ],
)  # fmt: skip
def test_dict_radius_errors(radius, unperturbed, match):
    with pytest.raises(InvalidArgumentError, match=match):
        ObservationPerturbation(
            PointGoalEnv().observation_space, check_radius(radius), list(unperturbed)
        )


def test_radius_for_a_discrete_entry_and_non_box_spaces_are_refused():
    with pytest.raises(InvalidArgumentError, match=r"entries \['mode'\] that are not Box"):
        ObservationPerturbation(ModeEnv().observation_space, {"vec": 0.1, "mode": 0.1})
    with pytest.raises(InvalidArgumentError, match="observation_space must be a gymnasium"):
        ObservationPerturbation(spaces.Discrete(4), 0.1)
    with pytest.raises(InvalidArgumentError, match="radius is a mapping of Dict entries"):
        ObservationPerturbation(spaces.Box(-1, 1, (2,)), {"a": 0.1})
    with pytest.raises(InvalidArgumentError, match=r"radius\['a'\] must be"):
        check_radius({"a": -0.1})


class _DiscreteObsEnv(gym.Env):
    observation_space = spaces.Discrete(5)
    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return 0, {}

    def step(self, action):
        return 0, 0.0, True, False, {}


@pytest.mark.parametrize("robust", [RobustSAC, RobustTD3], ids=["sac", "td3"])
def test_agents_refuse_non_box_observations_clearly(robust):
    with pytest.raises(UnsupportedSpaceError, match="observation_space must be a gymnasium"):
        robust("MlpPolicy", _DiscreteObsEnv())
    # a Dict without a Box entry (SB3's bit-flipping goal env: MultiBinary entries)
    with pytest.raises(UnsupportedSpaceError, match="or a Dict with Box entries, got Dict"):
        robust("MultiInputPolicy", BitFlippingEnv(n_bits=4, continuous=True))


# ------------------------------------------------------------------------------- agents
@pytest.mark.parametrize("robust", [RobustSAC, RobustTD3], ids=["sac", "td3"])
def test_draws_move_box_entries_within_their_radius_only(robust):
    model = robust(
        "MultiInputPolicy",
        PointGoalEnv(),
        radius={"observation": [0.1, 0.2], "achieved_goal": 0.05},
        unperturbed_keys=["desired_goal"],
        estimator="saa",
        max_level=3,
        seed=0,
        **_tiny(),
    )
    rng = np.random.default_rng(0)
    obs = {
        k: th.as_tensor(rng.uniform(-1, 1, (5, 2)), dtype=th.float32)
        for k in model.observation_space
    }
    seen = []

    def values(batch, index):
        seen.append(batch)
        return batch["observation"].sum(dim=1)

    est = model.robust_estimate(obs, values)
    assert est.per_point.shape == (5,)
    drawn = {k: v[:-5] for k, v in seen[0].items()}  # 8 draws per point, points in order
    for key, radius in (("observation", [0.1, 0.2]), ("achieved_goal", [0.05, 0.05])):
        step = drawn[key] - obs[key].repeat_interleave(8, dim=0)
        assert th.all(step.abs() <= th.tensor(radius) + 1e-6)
        assert th.all(step.abs().amax(dim=0) > 0.5 * th.tensor(radius))  # they do move
    th.testing.assert_close(drawn["desired_goal"], obs["desired_goal"].repeat_interleave(8, dim=0))
    for key in obs:  # the centres (the last rows of the same call) are the unperturbed points
        th.testing.assert_close(seen[0][key][-5:], obs[key])


@pytest.mark.parametrize("robust", [RobustSAC, RobustTD3], ids=["sac", "td3"])
def test_her_multi_input_learns_saves_and_loads(robust, tmp_path):
    model = robust(
        "MultiInputPolicy",
        PointGoalEnv(),
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="future"),
        radius=0.05,
        radius_scale="std",
        unperturbed_keys=["desired_goal"],
        seed=0,
        **_tiny(),
    ).learn(60)
    assert model._n_updates > 0
    assert len(model.observation_scale) == 4  # achieved_goal and observation, 2 each
    model.save(tmp_path / "m.zip")
    loaded = robust.load(tmp_path / "m.zip", env=PointGoalEnv(), device="cpu")
    assert loaded.robust_settings == model.robust_settings
    obs, _ = PointGoalEnv().reset(seed=1)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_dict_with_a_discrete_entry_trains():
    model = RobustSAC("MultiInputPolicy", ModeEnv(), radius=0.1, seed=0, **_tiny()).learn(50)
    assert model._n_updates > 0
    assert model.logger.name_to_value["train/evaluations_per_update"] > 16


def test_coordinate_std_in_chunks_equals_numpy():
    p = ObservationPerturbation(
        PointGoalEnv().observation_space, 0.1, unperturbed_keys=["desired_goal"]
    )
    rng = np.random.default_rng(4)
    obs = {
        "achieved_goal": rng.normal(2.0, 3.0, size=(1000, 2)).astype(np.float32),
        "desired_goal": rng.normal(size=(1000, 2)).astype(np.float32),
        "observation": rng.uniform(-1, 1, size=(1000, 2)).astype(np.float32),
    }
    expected = np.concatenate([obs["achieved_goal"], obs["observation"]], axis=1)
    np.testing.assert_allclose(
        p.coordinate_std(obs, chunk=77), expected.astype(np.float64).std(axis=0), rtol=1e-12
    )
    with pytest.raises(InvalidArgumentError, match="empty buffer"):
        p.coordinate_std({k: v[:0] for k, v in obs.items()})
