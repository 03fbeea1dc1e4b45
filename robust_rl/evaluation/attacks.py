"""Observation attacks: random noise and PGD against a Q-network, a critic or the policy itself.

Every attack moves a batch of observations ``obs`` (shape ``(n, d)``) inside the ℓ∞ ball of
radius ``epsilon`` around it, per coordinate: ``epsilon`` is a number or a ``(d,)`` array (for a
radius relative to a per-coordinate scale, pass ``epsilon * scale``). Where the observation
space has finite bounds, the result is also clipped to them (which keeps it in the ball).

* :func:`random_attack`: uniform noise in the ball.
* :func:`pgd_attack`: projected gradient ascent on any per-sample objective (the core below):
  random start in the ball, ``steps`` steps of ``step_size`` (default ``epsilon / steps``) along
  the gradient's sign, projection on the ball after each step.
* :func:`q_attack` (SA-DQN, Zhang et al. 2020): untargeted PGD against the greedy action
  ``a* = argmax Q(s)``: maximise the cross-entropy of ``softmax(Q(s̃))`` with ``a*``.
* :func:`critic_attack` (Pattanaik et al. 2018): minimise the critic's value of the policy's
  action, ``Q(s̃, π(s̃))``.
* :func:`mad_attack` (maximal action difference, SA-PPO/SA-DDPG): maximise
  ``‖π(s̃) − π(s)‖²`` (for a stochastic policy, of its mean or action probabilities).

The networks are callables on float tensors; the attacks put every ``torch.nn.Module`` they are
given in eval mode and restore its mode afterwards, and never change its parameters or their
gradients. :class:`ObservationAttack` binds an attack to an SB3 model (found from its policy's
networks, not its class name) and :class:`AttackedPredictor` applies it in rollouts.

References: H. Zhang et al., "Robust Deep Reinforcement Learning against Adversarial
Perturbations on State Observations", NeurIPS 2020; A. Pattanaik et al., "Robust Deep
Reinforcement Learning with Adversarial Attacks", AAMAS 2018.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.evaluation.rollouts import (
    WrappedPredictor,
    is_recurrent,
    pad_rows,
    predict_rows,
)
from robust_rl.risk.pgd import attack_mode, ball_ascent

__all__ = [
    "ATTACKS",
    "AttackBatch",
    "AttackName",
    "AttackedPredictor",
    "ObservationAttack",
    "attacks_for",
    "critic_attack",
    "mad_attack",
    "pgd_attack",
    "q_attack",
    "random_attack",
    "resolve_attack",
]

#: Attack names accepted by :class:`ObservationAttack`; ``"pgd"`` picks the gradient attack
#: that fits the model (:func:`resolve_attack`).
AttackName = Literal["random", "pgd", "q", "critic", "mad"]
ATTACKS: tuple[str, ...] = ("random", "pgd", "q", "critic", "mad")


def _check_epsilon(epsilon: Any, dim: int, rows: int | None = None) -> np.ndarray:
    """A radius as float64: shape ``(dim,)``, or ``(rows, dim)`` when ``rows`` is given and
    ``epsilon`` is a per-row array."""
    eps = np.asarray(epsilon, dtype=np.float64)
    if eps.ndim == 0:
        eps = np.full(dim, float(eps))
    shapes = [(dim,)] if rows is None else [(dim,), (rows, dim)]
    if eps.shape not in shapes:
        accepted = " or ".join(str(s) for s in shapes)
        raise InvalidArgumentError(
            f"epsilon must be a number or an array of shape {accepted}, got shape {eps.shape}"
        )
    if not (np.all(np.isfinite(eps)) and np.all(eps >= 0)):
        raise InvalidArgumentError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    return eps


def _check_obs(obs: Any) -> int:
    shape = tuple(obs.shape)
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise InvalidArgumentError(
            f"obs must be a batch of flat observations of shape (n, d), got shape {shape}"
        )
    return shape[1]


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidArgumentError(f"steps must be a positive integer, got {steps!r}")
    return steps


def random_attack(
    obs: np.ndarray,
    epsilon: float | np.ndarray,
    rng: np.random.Generator,
    *,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> np.ndarray:
    """Uniform noise in the ℓ∞ ball: ``obs + epsilon * u``, ``u ~ U[-1, 1]^d``.

    :param obs: observations, shape ``(n, d)``.
    :param epsilon: radius, a number, shape ``(d,)`` or one per row ``(n, d)``.
    :param rng: the source of the noise.
    :param low: optional lower bounds ``(d,)`` to clip to (non-finite entries ignored).
    :param high: optional upper bounds ``(d,)``.
    :return: float array of shape ``(n, d)`` with ``|result - obs| <= epsilon``.
    """
    d = _check_obs(obs)
    eps = _check_epsilon(epsilon, d, len(obs))
    return _noise_step(obs, eps, rng.uniform(-1.0, 1.0, size=np.shape(obs)), low, high)


def _noise_step(
    obs: np.ndarray,
    eps: np.ndarray,
    u: np.ndarray,
    low: np.ndarray | None,
    high: np.ndarray | None,
) -> np.ndarray:
    """``obs + eps * u`` clipped to the box, in ``obs``'s dtype."""
    x = np.asarray(obs, dtype=np.float64)
    return _clip_np(x + eps * u, x, low, high).astype(np.asarray(obs).dtype, copy=False)


def _clip_np(
    out: np.ndarray, x: np.ndarray, low: np.ndarray | None, high: np.ndarray | None
) -> np.ndarray:
    """Clip ``out`` to the box, but never past the clean point ``x`` (which may lie outside)."""
    if low is not None:
        out = np.maximum(out, np.minimum(np.where(np.isfinite(low), low, -np.inf), x))
    if high is not None:
        out = np.minimum(out, np.maximum(np.where(np.isfinite(high), high, np.inf), x))
    return out


def _modules_of(*fns: Any) -> list[nn.Module]:
    out = []
    for f in fns:
        if isinstance(f, nn.Module):
            out.append(f)
        owner = getattr(f, "__self__", None)  # bound method of a module
        if isinstance(owner, nn.Module):
            out.append(owner)
    return out


def _with(kwargs: dict[str, Any], *fns: Any) -> list[nn.Module]:
    """Modules passed in ``kwargs["modules"]`` (removed from it) plus those bound to ``fns``."""
    return list(kwargs.pop("modules", None) or []) + _modules_of(*fns)


def pgd_attack(
    objective: Callable[[Tensor], Tensor],
    obs: Tensor,
    epsilon: float | np.ndarray | Tensor,
    *,
    steps: int = 10,
    step_size: float | np.ndarray | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    start_noise: Tensor | None = None,
    low: Tensor | None = None,
    high: Tensor | None = None,
    modules: list[nn.Module] | None = None,
) -> Tensor:
    """Maximise ``objective(x̃)`` (per sample) over the ℓ∞ ball around ``obs`` by PGD
    (:func:`robust_rl.risk.ball_ascent` with a random start, keeping each row's best iterate).

    .. math::
        x_{k+1} = \\Pi_{B_\\infty(s, \\varepsilon)}\\big(x_k + \\alpha\\,
        \\mathrm{sign}\\,\\nabla_x f(x_k)\\big), \\qquad \\alpha = \\varepsilon / T

    :param objective: maps a ``(n, d)`` tensor to ``(n,)`` values to maximise; samples are
        independent (the gradient of the sum is taken).
    :param obs: observations, shape ``(n, d)``.
    :param epsilon: radius, a number, shape ``(d,)`` or one per row ``(n, d)`` (many radii in
        one call).
    :param steps: number of steps ``T >= 1``.
    :param step_size: step ``α`` (shaped like ``epsilon``); default ``epsilon / steps``.
    :param random_start: start from a uniform point of the ball (else from ``obs``).
    :param generator: torch generator of the random start.
    :param start_noise: the random start's ``U[0, 1)`` draws ``(n, d)``, drawn by the caller
        instead of from ``generator`` (rows of several random streams in one call).
    :param low: optional bounds ``(d,)`` to clip to (non-finite entries ignored).
    :param high: optional upper bounds.
    :param modules: networks used by ``objective``, kept in eval mode during the attack and
        restored after (modules bound to ``objective`` are found automatically).
    :return: detached tensor ``(n, d)`` with ``|result - obs| <= epsilon``; the iterate with the
        largest objective per sample over the start and every step.
    """
    d = _check_obs(obs)
    steps = _check_steps(steps)
    rows = obs.shape[0]
    eps = torch.as_tensor(_check_epsilon(epsilon, d, rows), dtype=obs.dtype, device=obs.device)
    alpha = (
        eps / steps
        if step_size is None
        else torch.as_tensor(_check_epsilon(step_size, d, rows), dtype=obs.dtype, device=obs.device)
    )
    s = obs.detach()
    start = None
    if random_start:
        u = start_noise
        if u is None:
            u = torch.rand(s.shape, generator=generator, dtype=s.dtype, device="cpu")
        if u.shape != s.shape:
            raise InvalidArgumentError(
                f"start_noise must have the shape of obs {tuple(s.shape)}, got {tuple(u.shape)}"
            )
        start = s + (2 * u.to(s) - 1) * eps
    return ball_ascent(
        objective,
        s,
        eps,
        steps=steps,
        step_size=alpha,
        low=None if low is None else low.to(s),
        high=None if high is None else high.to(s),
        start=start,
        keep_best=True,
        modules=list(modules or []) + _modules_of(objective),
    )


def q_attack(
    q_net: Callable[[Tensor], Tensor], obs: Tensor, epsilon: float | np.ndarray, **kwargs: Any
) -> Tensor:
    """Untargeted PGD against the greedy action of a Q-network (SA-DQN).

    Maximises ``CE(softmax(Q(s̃)), a*)`` with ``a* = argmax_a Q(s, a)`` fixed at the clean
    observation. For two actions this is minimising the margin ``Q(s̃, a*) − Q(s̃, a')``; for a
    linear ``Q(s) = W s + b`` its optimum is ``s − ε · sign(w_{a*} − w_{a'})``.

    :param q_net: maps ``(n, d)`` observations to ``(n, n_actions)`` Q-values.
    :param obs: observations ``(n, d)``.
    :param epsilon: radius (number or ``(d,)``).
    :param kwargs: passed to :func:`pgd_attack` (``steps``, ``random_start``, ...).
    """
    _check_obs(obs)
    modules = _with(kwargs, q_net)
    with attack_mode(modules), torch.no_grad():
        target = q_net(obs).argmax(dim=1)

    def objective(x: Tensor) -> Tensor:
        return nn.functional.cross_entropy(q_net(x), target, reduction="none")

    return pgd_attack(objective, obs, epsilon, modules=modules, **kwargs)


def critic_attack(
    actor: Callable[[Tensor], Tensor],
    critic: Callable[[Tensor, Tensor], Tensor],
    obs: Tensor,
    epsilon: float | np.ndarray,
    **kwargs: Any,
) -> Tensor:
    """PGD minimising the critic's value of the policy's action, ``Q(s̃, π(s̃))``.

    :param actor: maps ``(n, d)`` observations to ``(n, a)`` actions (deterministic).
    :param critic: maps observations and actions to ``(n,)`` or ``(n, 1)`` values.
    :param obs: observations ``(n, d)``.
    :param epsilon: radius (number or ``(d,)``).
    :param kwargs: passed to :func:`pgd_attack`.
    """

    def objective(x: Tensor) -> Tensor:
        return -critic(x, actor(x)).reshape(x.shape[0])

    return pgd_attack(objective, obs, epsilon, modules=_with(kwargs, actor, critic), **kwargs)


def mad_attack(
    policy_output: Callable[[Tensor], Tensor],
    obs: Tensor,
    epsilon: float | np.ndarray,
    **kwargs: Any,
) -> Tensor:
    """PGD maximising the change of the policy's output, ``‖π(s̃) − π(s)‖²`` (MAD attack).

    Needs the random start (the gradient vanishes at ``s̃ = s``).

    :param policy_output: maps ``(n, d)`` observations to ``(n, k)``: deterministic actions,
        the mean action of a Gaussian policy, or action probabilities.
    :param obs: observations ``(n, d)``.
    :param epsilon: radius (number or ``(d,)``).
    :param kwargs: passed to :func:`pgd_attack`.
    """
    _check_obs(obs)
    modules = _with(kwargs, policy_output)
    with attack_mode(modules), torch.no_grad():
        clean = policy_output(obs).reshape(obs.shape[0], -1)

    def objective(x: Tensor) -> Tensor:
        return ((policy_output(x).reshape(x.shape[0], -1) - clean) ** 2).sum(dim=1)

    return pgd_attack(objective, obs, epsilon, modules=modules, **kwargs)


# --------------------------------------------------------------------------------------------
# binding attacks to SB3 models (by their networks, never by class name)


def _networks(model: Any) -> dict[str, Any]:
    """The differentiable pieces of an SB3 model's policy that the attacks can use; for a model
    behind its observation normalisation
    (:class:`~robust_rl.evaluation.normalization.NormalizedModel`) composed with it, so that
    the attacks act on raw observations."""
    norm = getattr(model, "normalization", None)
    if norm is not None:
        return _normalized(_networks(model.model), norm.torch)
    policy = getattr(model, "policy", None)
    nets: dict[str, Any] = {}
    if policy is None or is_recurrent(model):
        return nets  # no policy, or a recurrent one (its outputs need the episode's state)
    if isinstance(getattr(policy, "q_net", None), nn.Module):  # DQN family
        nets["q"] = policy.q_net
    actor = getattr(policy, "actor", None)
    critic = getattr(policy, "critic", None)
    if isinstance(actor, nn.Module):
        if "deterministic" in inspect.signature(actor.forward).parameters:  # SAC: mean action
            nets["action"] = lambda x: actor(x, deterministic=True)
        else:  # TD3/DDPG
            nets["action"] = actor
        if isinstance(critic, nn.Module) and hasattr(critic, "q1_forward"):
            nets["critic"] = critic.q1_forward
        nets["modules"] = [m for m in (actor, critic) if isinstance(m, nn.Module)]
    elif callable(getattr(policy, "get_distribution", None)):  # PPO/A2C (ActorCriticPolicy)

        def output(x: Tensor) -> Tensor:
            dist = policy.get_distribution(x).distribution
            return dist.probs if hasattr(dist, "probs") else dist.mean

        nets["action"] = output
        nets["modules"] = [policy]
    return nets


def _normalized(nets: dict[str, Any], norm: Callable[[Tensor], Tensor]) -> dict[str, Any]:
    """``nets`` with every observation input passed through ``norm`` first."""
    out: dict[str, Any] = {"modules": list(nets.get("modules", []))}
    if "q" in nets:
        q = nets["q"]
        out["q"] = lambda x: q(norm(x))
        out["modules"] += _modules_of(q)
    if "action" in nets:
        action = nets["action"]
        out["action"] = lambda x: action(norm(x))
    if "critic" in nets:
        critic = nets["critic"]
        out["critic"] = lambda x, a: critic(norm(x), a)
    return out


def attacks_for(model: Any) -> tuple[str, ...]:
    """Attack names that apply to ``model`` (``"random"`` always)."""
    nets = _networks(model)
    out = ["random"]
    if "q" in nets:
        out += ["pgd", "q"]
    elif "critic" in nets:
        out += ["pgd", "critic", "mad"]
    elif "action" in nets:
        out += ["pgd", "mad"]
    return tuple(out)


def resolve_attack(name: str, model: Any) -> str:
    """The concrete attack for ``name``: ``"pgd"`` is ``"q"`` for a Q-network agent,
    ``"critic"`` for an actor-critic with a Q critic (SAC, TD3), ``"mad"`` otherwise (PPO, A2C).

    :raises KeyError: unknown name.
    :raises ValueError: an attack that does not apply to the model.
    """
    if name not in ATTACKS:
        raise UnknownNameError(f"attack: unknown attack {name!r}; accepted: {', '.join(ATTACKS)}")
    usable = attacks_for(model)
    if name not in usable:
        raise InvalidArgumentError(
            f"attack {name!r} does not apply to {type(model).__name__}; usable: {usable}"
        )
    if name != "pgd":
        return name
    return next(a for a in ("q", "critic", "mad") if a in usable)


class ObservationAttack:
    """An attack bound to an SB3 model: ``attack(obs) -> perturbed obs`` (numpy in and out).

    :param model: an SB3 model (its ``policy`` networks and ``observation_space`` are used);
        for ``"random"`` any object with a Box ``observation_space``.
    :param name: one of :data:`ATTACKS`; ``"pgd"`` resolves per model (:func:`resolve_attack`).
    :param epsilon: radius, a number or ``(d,)`` array, in observation units.
    :param seed: seeds the random noise / random starts (reproducible for a fixed batching).
    :param steps: PGD steps (step ``epsilon / steps``).
    :raises ValueError: non-Box or non-flat observation space, bad ``epsilon``, an attack that
        does not apply to the model.
    """

    def __init__(
        self,
        model: Any,
        name: str,
        epsilon: float | np.ndarray,
        *,
        seed: int = 0,
        steps: int = 10,
    ) -> None:
        from gymnasium import spaces

        space = getattr(model, "observation_space", None)
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise InvalidArgumentError(
                "observation attacks need a flat Box observation space, got "
                f"{space!r}; image, discrete and dict observations are not supported"
            )
        self.model = model
        self.name = resolve_attack(name, model)
        self.epsilon = _check_epsilon(epsilon, space.shape[0])
        self.steps = _check_steps(steps)
        self.low = np.asarray(space.low, dtype=np.float64)
        self.high = np.asarray(space.high, dtype=np.float64)
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator().manual_seed(seed)
        self._nets = _networks(model)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Perturb a batch ``(n, d)`` of observations."""
        obs = np.asarray(obs)
        if not np.any(self.epsilon > 0):
            return obs
        return self.perturb(obs, np.tile(self.epsilon, (len(obs), 1)), self.draw(len(obs)))

    def draw(self, n: int) -> np.ndarray | Tensor:
        """The next ``n`` rows of this attack's random stream: ``U[-1, 1]`` noise (numpy) for
        ``"random"``, the random start's ``U[0, 1)`` draws (torch, CPU) for the PGD attacks."""
        shape = (n, self.epsilon.shape[0])
        if self.name == "random":
            return self._rng.uniform(-1.0, 1.0, size=shape)
        return torch.rand(shape, generator=self._gen, dtype=torch.float32, device="cpu")

    def perturb(
        self, obs: np.ndarray, epsilon: np.ndarray, noise: np.ndarray | Tensor
    ) -> np.ndarray:
        """Perturb ``obs`` ``(n, d)`` with a radius per row ``epsilon`` ``(n, d)`` and the
        random draws ``noise`` (from :meth:`draw`, possibly of several attacks of the same model
        and name): one batch for many radii. A PGD batch is padded to whole blocks of
        :data:`~robust_rl.evaluation.rollouts.PREDICT_ROW_BLOCK` rows, so that a row's result
        does not depend on the rows beside it."""
        if self.name == "random":
            return _noise_step(obs, epsilon, np.asarray(noise), self.low, self.high)
        n = len(obs)
        device = getattr(self.model, "device", torch.device("cpu"))

        def rows(a: np.ndarray | Tensor) -> Tensor:
            return torch.as_tensor(pad_rows(np.asarray(a)), dtype=torch.float32)

        x = rows(obs).to(device)
        kw: dict[str, Any] = {
            "steps": self.steps,
            "start_noise": rows(noise),
            "low": torch.as_tensor(self.low, dtype=torch.float32, device=device),
            "high": torch.as_tensor(self.high, dtype=torch.float32, device=device),
        }
        eps = pad_rows(epsilon)
        nets = self._nets
        if self.name == "q":
            out = q_attack(nets["q"], x, eps, modules=nets.get("modules"), **kw)
        elif self.name == "critic":
            out = critic_attack(
                nets["action"], nets["critic"], x, eps, modules=nets["modules"], **kw
            )
        else:
            out = mad_attack(nets["action"], x, eps, modules=nets["modules"], **kw)
        return out[:n].cpu().numpy().astype(obs.dtype, copy=False)


class AttackBatch:
    """Several radii of one attack on one model, perturbed as one batch: the observation hook
    of :func:`~robust_rl.evaluation.lockstep.lockstep_returns` over rows
    ``k * rows_per_attack + i`` (attack ``k``, episode ``i``).

    Each attack keeps its own random stream and draws for its own rows in order, so a row gets
    the same perturbation as when its attack runs alone on the same rows (tested).

    :param attacks: the bound attacks, one per radius, all of the same model and name.
    :param rows_per_attack: consecutive rows of each attack (the episodes per radius).
    """

    def __init__(self, attacks: Sequence[ObservationAttack], rows_per_attack: int) -> None:
        if not attacks or len({(id(a.model), a.name) for a in attacks}) != 1:
            raise InvalidArgumentError("attacks must be one or more attacks of one model and name")
        self.attacks = list(attacks)
        self.rows_per_attack = rows_per_attack
        self._eps = np.stack([a.epsilon for a in attacks])

    def __call__(self, obs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The observations of ``rows`` (ascending) as the policy sees them."""
        groups = np.asarray(rows) // self.rows_per_attack
        eps = self._eps[groups]
        hit = np.flatnonzero(eps.any(axis=1))
        if not len(hit):
            return obs
        kinds, counts = np.unique(groups[hit], return_counts=True)
        draws = [self.attacks[k].draw(c) for k, c in zip(kinds, counts, strict=True)]
        noise = torch.cat(draws) if isinstance(draws[0], Tensor) else np.concatenate(draws)
        out = np.array(obs, copy=True)
        out[hit] = self.attacks[0].perturb(out[hit], eps[hit], noise)
        return out


class AttackedPredictor(WrappedPredictor):
    """``model`` acting on attacked observations: ``predict(obs) = model.predict(attack(obs))``.

    :param model: anything with SB3's ``predict``.
    :param attack: maps a batch of observations to perturbed ones.
    """

    def __init__(self, model: Any, attack: Callable[[np.ndarray], np.ndarray]) -> None:
        self.model = model
        self.attack = attack
        self.observation_space = getattr(model, "observation_space", None)

    def predict(
        self, observation: Any, *, deterministic: bool = True, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Predict on ``attack(observation)`` (through
        :func:`~robust_rl.evaluation.rollouts.predict_rows`, so that a row's action does not
        depend on the batch)."""
        attacked = self.attack(np.asarray(observation))
        if kwargs.get("state") is not None:  # a recurrent model's own state: asked as it is
            return self.model.predict(attacked, deterministic=deterministic, **kwargs)
        extra = {k: v for k, v in kwargs.items() if v is not None}
        return predict_rows(self.model, attacked, deterministic, **extra), None
