"""Tests of the observation attacks (:mod:`robust_rl.evaluation.attacks`) and their evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from robust_rl.configs import CONFIG_DIR
from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.evaluation import (
    AttackedPredictor,
    ObservationAttack,
    attacks_for,
    critic_attack,
    evaluate_attacks,
    evaluate_returns,
    mad_attack,
    observation_scale,
    pgd_attack,
    q_attack,
    random_attack,
    random_observation_scale,
    resolve_attack,
)


class Balancer:
    """Balances CartPole; has a Box observation space so that the random attack applies."""

    observation_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple:
        obs = np.asarray(observation)
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64), None


def _in_ball(x: np.ndarray | torch.Tensor, s: np.ndarray | torch.Tensor, eps) -> bool:
    d = np.abs(np.asarray(x, dtype=np.float64) - np.asarray(s, dtype=np.float64))
    return bool(np.all(d <= np.asarray(eps, dtype=np.float64) + 1e-6))


# ------------------------------------------------------------------------------------------
# attack functions


def test_random_attack_stays_in_ball_and_box_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, 3))
    eps = np.array([0.1, 0.0, 2.0])
    out = random_attack(obs, eps, np.random.default_rng(1))
    assert _in_ball(out, obs, eps) and np.array_equal(out[:, 1], obs[:, 1])
    assert np.abs(out - obs)[:, 2].max() > 1.5  # fills the ball, not a point
    np.testing.assert_array_equal(out, random_attack(obs, eps, np.random.default_rng(1)))
    box = {"low": np.full(3, -0.5), "high": np.full(3, 0.5)}
    inside = np.clip(obs, -0.4, 0.4)
    c2 = random_attack(inside, 5.0, np.random.default_rng(2), **box)
    assert c2.min() >= -0.5 and c2.max() <= 0.5 and _in_ball(c2, inside, 5.0)
    # a clean point outside the box is never moved further than epsilon
    outside = np.array([[3.0, -3.0, 0.0]])
    c3 = random_attack(outside, 0.1, np.random.default_rng(3), **box)
    assert _in_ball(c3, outside, 0.1)
    t = torch.as_tensor(outside, dtype=torch.float32)
    c4 = pgd_attack(
        lambda x: x.sum(1), t, 0.1, low=torch.full((3,), -0.5), high=torch.full((3,), 0.5)
    )
    assert _in_ball(c4, outside, 0.1)


def test_pgd_stays_in_ball_for_any_objective() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    obs = torch.randn(64, 5)
    eps = np.array([0.3, 0.1, 0.0, 1.0, 0.05])
    out = pgd_attack(lambda x: net(x).squeeze(1), obs, eps, steps=7)
    assert out.shape == obs.shape and _in_ball(out, obs, eps)
    assert torch.equal(out[:, 2], obs[:, 2])
    # from the clean point, the kept best iterate is never worse than the clean point
    start_clean = pgd_attack(lambda x: net(x).squeeze(1), obs, eps, random_start=False)
    assert _in_ball(start_clean, obs, eps)
    with torch.no_grad():
        assert torch.all(net(start_clean) >= net(obs))
        assert torch.any(net(start_clean) > net(obs))


def test_q_attack_finds_the_analytic_worst_case_of_a_linear_q_network() -> None:
    torch.manual_seed(1)
    q_net = nn.Linear(4, 2)
    obs = torch.randn(50, 4)
    eps = 0.2
    w = q_net.weight.detach()
    greedy = q_net(obs).argmax(1)
    # margin Q(s, a*) - Q(s, a') is minimised at s - eps * sign(w_a* - w_a')
    direction = torch.where(
        greedy[:, None] == 0, (w[0] - w[1]).expand(50, 4), (w[1] - w[0]).expand(50, 4)
    )
    worst = obs - eps * direction.sign()
    exact = q_attack(q_net, obs, eps, random_start=False)
    torch.testing.assert_close(exact, worst)
    # from a random start, 20 steps of eps/10 reach the corner from anywhere in the ball
    gen = torch.Generator().manual_seed(0)
    rand = q_attack(q_net, obs, eps, steps=20, step_size=eps / 10, generator=gen)
    torch.testing.assert_close(rand, worst)
    # SA-DQN's defaults (random start, 10 steps of eps/10) stay in the ball and lower the margin
    sa = q_attack(q_net, obs, eps, generator=gen)
    assert _in_ball(sa, obs, eps)

    def margin(x: torch.Tensor) -> torch.Tensor:
        q = q_net(x)
        return (q.gather(1, greedy[:, None]) - q.gather(1, 1 - greedy[:, None])).squeeze(1)

    with torch.no_grad():
        assert torch.all(margin(sa) < margin(obs))


def test_attacks_restore_modes_and_leave_parameters_alone() -> None:
    q_net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    before = [p.detach().clone() for p in q_net.parameters()]
    obs = torch.randn(10, 3)
    q_net.train()
    q_attack(q_net, obs, 0.1)
    assert q_net.training and all(m.training for m in q_net.modules())
    q_net.eval()
    q_attack(q_net, obs, 0.1)
    assert not any(m.training for m in q_net.modules())
    assert all(torch.equal(a, b) for a, b in zip(before, q_net.parameters(), strict=True))
    assert all(p.grad is None for p in q_net.parameters())


def test_critic_attack_on_linear_actor_and_critic() -> None:
    torch.manual_seed(2)
    actor = nn.Linear(3, 2)
    c = torch.randn(3)
    dvec = torch.randn(2)

    def critic(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s @ c + a @ dvec

    obs = torch.randn(20, 3)
    eps = torch.tensor([0.1, 0.2, 0.3]).numpy()
    # Q(s, pi(s)) = (c + A^T d) . s + const: minimised at s - eps * sign(c + A^T d)
    g = c + actor.weight.detach().T @ dvec
    out = critic_attack(actor, critic, obs, eps, random_start=False)
    torch.testing.assert_close(out, obs - torch.as_tensor(eps, dtype=torch.float32) * g.sign())


def test_mad_attack_on_a_rank_one_linear_policy() -> None:
    w = torch.tensor([[0.5, -2.0, 1.0]])
    policy = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        policy.weight.copy_(w)
    obs = torch.randn(30, 3)
    eps = 0.1
    out = mad_attack(
        policy, obs, eps, steps=20, step_size=eps / 10, generator=torch.Generator().manual_seed(3)
    )
    # max (w . delta)^2 over |delta_i| <= eps is (eps * |w|_1)^2, at delta = +-eps * sign(w)
    change = ((out - obs) @ w.T).abs().squeeze(1)
    torch.testing.assert_close(change, torch.full((30,), eps * w.abs().sum().item()))
    assert _in_ball(out, obs, eps)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epsilon": -0.1}, "epsilon must be finite and >= 0"),
        ({"epsilon": [0.1, 0.2]}, r"epsilon must be a number or an array of shape \(4,\)"),
        ({"steps": 0}, "steps must be a positive integer"),
    ],
)
def test_attack_argument_checks(kwargs: dict, match: str) -> None:
    args = {"epsilon": 0.1} | kwargs
    with pytest.raises(InvalidArgumentError, match=match):
        q_attack(nn.Linear(4, 2), torch.zeros(3, 4), **args)
    with pytest.raises(InvalidArgumentError, match=r"obs must be a batch of flat observations"):
        q_attack(nn.Linear(4, 2), torch.zeros(4), 0.1)


# ------------------------------------------------------------------------------------------
# SB3 models


@pytest.fixture(scope="module")
def sb3_models() -> dict:
    from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

    from robust_rl.dqn import RobustDQN

    kw = {"device": "cpu", "seed": 0}
    return {
        "dqn": DQN("MlpPolicy", "robust_rl/CartPole-v1", **kw),
        "robust-dqn": RobustDQN("MlpPolicy", "robust_rl/CartPole-v1", **kw),
        "ppo": PPO("MlpPolicy", "robust_rl/CartPole-v1", n_steps=64, **kw),
        "a2c": A2C("MlpPolicy", "robust_rl/Pendulum-v1", **kw),
        "sac": SAC("MlpPolicy", "robust_rl/Pendulum-v1", **kw),
        "td3": TD3("MlpPolicy", "robust_rl/Pendulum-v1", **kw),
    }


def test_pgd_resolves_by_the_model_networks(sb3_models: dict) -> None:
    expected = {
        "dqn": "q",
        "robust-dqn": "q",
        "ppo": "mad",
        "a2c": "mad",
        "sac": "critic",
        "td3": "critic",
    }
    for name, model in sb3_models.items():
        assert resolve_attack("pgd", model) == expected[name]
        assert resolve_attack("random", model) == "random"
    assert attacks_for(sb3_models["sac"]) == ("random", "pgd", "critic", "mad")
    with pytest.raises(InvalidArgumentError, match="attack 'critic' does not apply to DQN"):
        resolve_attack("critic", sb3_models["dqn"])
    with pytest.raises(UnknownNameError, match="unknown attack 'fgsm'; accepted: random, pgd"):
        resolve_attack("fgsm", sb3_models["dqn"])


@pytest.mark.parametrize("name", ["dqn", "robust-dqn", "ppo", "a2c", "sac", "td3"])
def test_every_attacked_observation_stays_in_its_ball(sb3_models: dict, name: str) -> None:
    model = sb3_models[name]
    d = model.observation_space.shape[0]
    obs = np.random.default_rng(0).uniform(-0.5, 0.5, size=(16, d)).astype(np.float32)
    eps = np.linspace(0.01, 0.2, d)
    training = model.policy.training
    for attack in attacks_for(model):
        out = ObservationAttack(model, attack, eps, seed=1)(obs)
        assert out.shape == obs.shape and out.dtype == obs.dtype
        assert _in_ball(out, obs, eps), attack
        assert not np.array_equal(out, obs), attack
    assert model.policy.training == training


def test_non_box_observations_are_refused() -> None:
    class Tabular:
        observation_space = spaces.Discrete(5)

        def predict(self, observation, deterministic=True):
            return np.zeros(len(observation), dtype=np.int64), None

    with pytest.raises(InvalidArgumentError, match="observation attacks need a flat Box"):
        ObservationAttack(Tabular(), "random", 0.1)


# ------------------------------------------------------------------------------------------
# evaluate_attacks


def test_evaluate_attacks_rows_clean_radius_and_scale() -> None:
    models = {"bal": Balancer()}
    res = evaluate_attacks(
        models, "cartpole", n_episodes=3, seed=4, epsilons=[0.0, 5.0], max_episode_steps=100
    )
    assert [(r.attack, r.epsilon, r.kind, r.mdp) for r in res.rows] == [
        ("random", 0.0, "attack", "original"),
        ("random", 5.0, "attack", "original"),
    ]
    clean = evaluate_returns(Balancer(), "robust_rl/CartPole-v1", 3, 4, max_episode_steps=100)
    assert list(res.rows[0].returns) == clean.tolist()
    assert res.rows[1].mean < res.rows[0].mean  # noise of 5 per coordinate topples it
    assert res.summary("bal").attacks == {"random": {0.0: 100.0, 5.0: res.rows[1].mean}}
    rel = evaluate_attacks(
        models, "cartpole", n_episodes=2, epsilons=[0.1], scale="std", max_episode_steps=50
    )
    scale = observation_scale(Balancer(), "cartpole", 5, 0, max_episode_steps=50)
    np.testing.assert_allclose(rel.rows[0].epsilon_scale, scale)
    assert scale.shape == (4,) and np.all(scale > 0)
    assert "× scale" in rel.to_markdown()


class Pusher(Balancer):
    """Always pushes left: a different policy from Balancer."""

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple:
        return np.zeros(len(observation), dtype=np.int64), None


def test_random_scale_is_the_same_for_every_model_and_seeded() -> None:
    import gymnasium as gym

    res = evaluate_attacks(
        {"bal": Balancer(), "push": Pusher()},
        "cartpole",
        n_episodes=1,
        epsilons=[0.1],
        scale="random",
        max_episode_steps=60,
    )
    a, b = (np.asarray(r.epsilon_scale) for r in res.rows)
    np.testing.assert_array_equal(a, b)  # independent of the attacked model
    np.testing.assert_array_equal(a, random_observation_scale("cartpole", max_episode_steps=60))
    # by hand: 32 episodes in lockstep (reset seeds 3..34), one draw from default_rng(3) per
    # step for the episodes still running, in order; the observations are those the actions
    # were chosen on; one batch of 32 CartPole episodes holds more than 200 steps
    envs = [gym.make("robust_rl/CartPole-v1") for _ in range(32)]
    rng = np.random.default_rng(3)
    obs = [env.reset(seed=3 + i)[0] for i, env in enumerate(envs)]
    active, seen, steps = list(range(32)), [], [0] * 32
    while active:
        seen += [obs[j] for j in active]
        still = []
        for j, action in zip(active, rng.integers(0, 2, size=len(active)), strict=True):
            obs[j], _, terminated, truncated, _ = envs[j].step(int(action))
            steps[j] += 1
            if not (terminated or truncated or steps[j] >= 60):
                still.append(j)
        active = still
    assert len(seen) >= 200
    np.testing.assert_allclose(
        random_observation_scale("cartpole", 200, 3, max_episode_steps=60),
        np.std(np.asarray(seen, dtype=np.float64), axis=0),
        rtol=1e-12,
    )
    # a larger budget runs more batches; another seed gives other draws
    assert not np.array_equal(
        random_observation_scale("cartpole", 200, 3), random_observation_scale("cartpole", 2000, 3)
    )
    assert not np.array_equal(
        random_observation_scale("cartpole", 200, 3), random_observation_scale("cartpole", 200, 4)
    )
    # continuous actions (Box), and the attacked MDP's own physics
    pend = random_observation_scale("pendulum", 400, 0)
    assert pend.shape == (3,) and np.all(pend > 0) and np.all(pend[:2] <= 1.0)
    with pytest.raises(InvalidArgumentError, match="n_steps"):
        random_observation_scale("cartpole", 0)


def test_random_scale_refuses_an_unbounded_action_space() -> None:
    from robust_rl.evaluation.attack_eval import _UniformActions

    with pytest.raises(InvalidArgumentError, match="action space must be bounded"):
        _UniformActions(spaces.Box(-np.inf, np.inf, (2,), np.float32), 0)
    with pytest.raises(InvalidArgumentError, match="expected a Box or Discrete action space"):
        _UniformActions(spaces.MultiBinary(3), 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epsilons": [0.1, 0.1]}, InvalidArgumentError, "epsilons must be distinct"),
        ({"epsilons": []}, InvalidArgumentError, "epsilons must be a non-empty list"),
        ({"epsilons": [-1.0]}, InvalidArgumentError, "epsilons must be a finite number >= 0"),
        ({"scale": "range"}, InvalidArgumentError, "scale must be 'absolute', 'std'"),
        ({"attack": "pgd"}, InvalidArgumentError, "attack 'pgd' does not apply to Balancer"),
        ({"mdp": "moon"}, UnknownNameError, "suite 'cartpole' has no test MDP 'moon'"),
    ],
)
def test_evaluate_attacks_argument_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        evaluate_attacks({"bal": Balancer()}, "cartpole", n_episodes=1, **kwargs)


def test_attacked_predictor_passes_perturbed_observations() -> None:
    seen = []

    class Spy(Balancer):
        def predict(self, observation, deterministic=True):
            seen.append(np.array(observation))
            return super().predict(observation, deterministic)

    shift = AttackedPredictor(Spy(), lambda o: o + 1.0)
    shift.predict(np.zeros((2, 4), dtype=np.float32))
    np.testing.assert_array_equal(seen[0], np.ones((2, 4)))


@pytest.mark.slow
def test_trained_dqn_return_drops_under_pgd(tmp_path) -> None:
    """A DQN trained on CartPole (RL Zoo hyperparameters, 50k steps) loses most of its return
    under SA-DQN's PGD at ε = 0.1. DQN on CartPole does not solve the task on every seed, so the
    first of seeds 0..4 whose clean return is at least 400 is attacked."""
    from robust_rl.training import load_config, train

    cfg = load_config(CONFIG_DIR / "dqn_cartpole.yaml")
    torch.set_num_threads(1)
    cleans = []
    for seed in range(5):
        model = train("dqn", "robust_rl/CartPole-v1", cfg, seed, tmp_path / f"s{seed}").model
        res = evaluate_attacks(
            {"dqn": model}, "cartpole", n_episodes=10, seed=100, attack="pgd", epsilons=[0.0, 0.1]
        )
        clean, attacked = (r.mean for r in res.rows)
        cleans.append(clean)
        if clean >= 400:
            break
    else:
        pytest.fail(f"no seed learned CartPole: clean returns {cleans}")
    assert res.rows[1].attack == "q"
    assert attacked < 0.5 * clean, (clean, attacked)


@pytest.mark.parametrize(
    ("name", "suite"),
    [
        ("dqn", "cartpole"),
        ("robust-dqn", "cartpole"),
        ("ppo", "cartpole"),
        ("a2c", "pendulum"),
        ("sac", "pendulum"),
        ("td3", "pendulum"),
    ],
)
def test_batched_attack_path_equals_the_per_radius_path(
    sb3_models: dict, name: str, suite: str
) -> None:
    """All radii in one lockstep batch (one PGD per step) give the per-radius path's returns,
    for every attack the model takes."""
    model = sb3_models[name]
    for attack in attacks_for(model):
        kw = {
            "attack": attack,
            "epsilons": (0.0, 0.05, 0.3),
            "n_episodes": 3,
            "seed": 4,
            "steps": 3,
            "max_episode_steps": 40,
        }
        fast = evaluate_attacks({name: model}, suite, lockstep=True, **kw)
        ref = evaluate_attacks({name: model}, suite, lockstep=False, **kw)
        for a, b in zip(fast.rows, ref.rows, strict=True):
            assert (a.attack, a.epsilon) == (b.attack, b.epsilon)
            if suite == "pendulum":  # the float32 cost term (robust_rl.evaluation.lockstep)
                np.testing.assert_allclose(a.returns, b.returns, rtol=1e-9, atol=1e-8)
            else:
                assert a.returns == b.returns, (attack, a.epsilon)


def test_per_row_radii_equal_one_call_per_radius() -> None:
    """pgd_attack with a radius per row gives each row what its own radius gives alone."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    obs = torch.randn(6, 3)
    radii = np.array([[0.1] * 3] * 3 + [[0.4, 0.2, 0.0]] * 3)
    noise = torch.rand(6, 3, generator=torch.Generator().manual_seed(2))

    def objective(x: torch.Tensor) -> torch.Tensor:
        return net(x).reshape(-1)

    both = pgd_attack(objective, obs, radii, steps=4, start_noise=noise)
    for rows in (slice(0, 3), slice(3, 6)):
        alone = pgd_attack(objective, obs[rows], radii[rows][0], steps=4, start_noise=noise[rows])
        torch.testing.assert_close(both[rows], alone, rtol=0, atol=1e-7)
    assert _in_ball(both, obs, radii)


def test_ball_ascent_reaches_the_closed_form_optimum_of_a_linear_objective() -> None:
    """max w·z over the ball: x + ρ·sign(w) (ℓ∞), x + ρ·w/‖w‖ (ℓ2), one radius per row; a box
    bound caps the ℓ∞ step and a point outside the box is not moved further out."""
    from robust_rl.risk import ball_ascent

    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    radius = torch.tensor([[0.1], [0.5], [0.0]])

    def objective(z: torch.Tensor) -> torch.Tensor:
        return z @ w

    z = ball_ascent(objective, x, radius, steps=3, step_size=radius)
    torch.testing.assert_close(z, x + radius * w.sign())
    z2 = ball_ascent(objective, x, radius, steps=20, step_size=radius / 4, norm="l2")
    torch.testing.assert_close(z2, x + radius * w / w.norm(), atol=1e-6, rtol=0)
    high = torch.tensor([0.05, 10.0, 0.5])
    zb = ball_ascent(objective, x, radius, steps=3, step_size=radius, high=high)
    torch.testing.assert_close(zb[0], torch.tensor([0.05, -0.1, 0.1]))
    torch.testing.assert_close(zb[1], torch.tensor([1.0, 0.5, 1.0]))  # x[1] is above high
    with pytest.raises(InvalidArgumentError, match="an l2 radius must be one value per row"):
        ball_ascent(objective, x, torch.ones(3, 3), steps=1, step_size=radius, norm="l2")
