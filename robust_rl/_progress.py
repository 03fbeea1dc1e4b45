"""One progress bar per long evaluation or training (tqdm on stderr): counts, rate and ETA;
off unless asked for (``progress=True``; ``robust-rl evaluate`` shows it unless ``--quiet``)."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """``with Progress(total, "grid", enabled) as bar: ... bar.update(n)``.

    :param total: units of work.
    :param desc: what is being done (shown first on the bar).
    :param enabled: draw the bar; otherwise every call does nothing.
    :param unit: name of one unit of work.
    :param leave: keep the finished bar on screen.
    """

    def __init__(
        self, total: int, desc: str, enabled: bool, unit: str = "MDP", leave: bool = True
    ) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=desc, unit=unit, file=sys.stderr, mininterval=0.5, leave=leave
            )

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Record ``n`` more units done; ``postfix``: values shown after the bar (``loss=...``;
        floats with four decimals, formatted only when the bar is drawn)."""
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(
                    {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in postfix.items()}
                )

    def __enter__(self) -> Progress:
        return self

    def close(self) -> None:
        """Finish the bar (it stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __exit__(self, *exc_info: object) -> None:
        self.close()
