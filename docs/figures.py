"""Draw the explanatory figures of the docs into docs/img/.

Every figure is computed from formulas, not from training runs, so it is
deterministic: the same matplotlib version draws the same pixels.

    python docs/figures.py            # (re)write every figure
    python docs/figures.py --check    # exit 1 if a committed PNG differs from what would be drawn

``--check`` compares decoded pixel arrays, not file bytes, so PNG metadata or
compression settings cannot make it fail; only a visible difference does. A
channel may differ by up to 2/255: another CPU's floating-point path shifts
anti-aliased edges by one level (measured: 49 pixels of gae_weights.png, by 1/255).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse, FancyArrowPatch, Rectangle  # noqa: E402

IMG = Path(__file__).resolve().parent / "img"
DPI = 100
STYLE = {
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "rlsuite-docs",
    "path.simplify": False,
}


def ppo_clip_figure():
    """Per-sample L^CLIP against the ratio r, for a positive and a negative advantage."""
    eps = 0.2
    r = np.linspace(0.0, 2.0, 801)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    for ax, adv in zip(axes, (1.0, -1.0)):
        unclipped = r * adv
        clipped = np.clip(r, 1 - eps, 1 + eps) * adv
        objective = np.minimum(unclipped, clipped)
        flat = np.isclose(objective, clipped) & ~np.isclose(unclipped, clipped)
        ax.plot(r, unclipped, "--", color="0.6", label=r"unclipped $r\,A$ ($L^{CPI}$)")
        ax.plot(r, objective, color="C0", lw=2.2, label=r"$L^{CLIP} = \min(rA,\ \mathrm{clip}(r)A)$")
        ax.fill_between(r, -2.2, 2.2, where=flat, color="C1", alpha=0.15,
                        label="no gradient (clip acts)")
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        for edge in (1 - eps, 1 + eps):
            ax.axvline(edge, color="C1", lw=0.8)
        ax.set_xlim(0, 2)
        ax.set_ylim(-2.2, 2.2)
        ax.set_xlabel(r"probability ratio $r_t(\theta)$")
        sign = ">" if adv > 0 else "<"
        ax.set_title(rf"$\hat A_t {sign} 0$ (here $\hat A_t = {adv:+.0f}$), $\epsilon = {eps}$")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("objective for one sample")
    axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def gae_weights_figure():
    """GAE as a weighted average of n-step advantages: weight (1 - lambda) lambda^(n-1)."""
    n = np.arange(1, 41)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, lam in enumerate((0.0, 0.5, 0.9, 0.95, 0.99)):
        # lambda = 0 puts all weight on n = 1 (the TD error); the others' weights are 0
        ns = n if lam > 0 else n[:1]
        weights = (1 - lam) * lam ** (ns - 1)
        ax.plot(ns, weights, marker="o", ms=3, color=f"C{i}",
                label=rf"$\lambda = {lam}$ (mean $n$ = {1 / (1 - lam):.0f})")
    ax.set_xlabel(r"$n$: the $n$-step advantage $\hat A_t^{(n)}$")
    ax.set_ylabel(r"weight $(1-\lambda)\,\lambda^{n-1}$")
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1.5)
    ax.set_xlim(0.5, 40.5)
    ax.set_title(r"GAE($\gamma, \lambda$): how much each $n$-step advantage counts")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    fig.tight_layout()
    return fig


def autoreset_timeline_figure():
    """One sub-environment of a Gymnasium 1.x vector env in next-step autoreset mode."""
    # (label, episode, reward, flag text, valid)
    calls = [
        ("step", "A", "1", "", True),
        ("step", "A", "1", "", True),
        ("step", "A", "1", "", True),
        ("step", "A", "1", "terminated\nor truncated", True),
        ("reset", "-", "0", "action\nignored", False),
        ("step", "B", "1", "", True),
        ("step", "B", "1", "", True),
        ("step", "B", "1", "", True),
    ]
    colors = {"A": "#9ecae1", "B": "#a1d99b", "-": "#d9d9d9"}
    fig, ax = plt.subplots(figsize=(9, 3.4))
    width = 1.0
    for i, (kind, episode, reward, flag, valid) in enumerate(calls):
        x = i * width
        ax.add_patch(Rectangle((x + 0.05, 1.0), width - 0.1, 1.0, facecolor=colors[episode],
                               edgecolor="k", hatch=None if valid else "///"))
        box = None if valid else dict(facecolor="white", edgecolor="none", pad=1.5)
        ax.text(x + width / 2, 1.68, f"call {i}", ha="center", va="center", fontsize=8, bbox=box)
        ax.text(x + width / 2, 1.35, kind if valid else "reset\nstep", ha="center", va="center",
                fontsize=9, weight="bold" if not valid else "normal", bbox=box)
        ax.text(x + width / 2, 0.72, f"r = {reward}", ha="center", va="center", fontsize=9)
        ax.text(x + width / 2, 0.35, "valid" if valid else "masked", ha="center", va="center",
                fontsize=9, color="k" if valid else "C3")
        if flag:
            ax.text(x + width / 2, 2.35, flag, ha="center", va="center", fontsize=8,
                    color="C3" if not valid else "k")
    ax.text(-0.1, 0.72, "reward", ha="right", va="center", fontsize=9)
    ax.text(-0.1, 0.35, "mask", ha="right", va="center", fontsize=9)
    ax.text(-0.1, 1.5, "vector\nenv call", ha="right", va="center", fontsize=9)
    ax.annotate("", xy=(3.95, 2.08), xytext=(0.05, 2.08),
                arrowprops=dict(arrowstyle="<->", color=colors["A"], lw=2))
    ax.text(2.0, 2.16, "episode A: 4 transitions", ha="center", va="bottom", fontsize=8)
    ax.annotate("", xy=(7.95, 2.08), xytext=(5.05, 2.08),
                arrowprops=dict(arrowstyle="<->", color=colors["B"], lw=2))
    ax.text(6.5, 2.16, "episode B", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-1.3, len(calls) * width + 0.1)
    ax.set_ylim(0.1, 2.7)
    ax.axis("off")
    ax.set_title("Next-step autoreset: the call after an episode ends only resets; "
                 "it is not a transition", fontsize=10)
    fig.tight_layout()
    return fig


def trust_region_figure():
    """A KL ball around theta_old, the plain gradient step and the natural-gradient step."""
    F = np.array([[6.0, 1.5], [1.5, 1.0]])  # curvature of the mean KL at theta_old
    g = np.array([1.0, 0.45])               # gradient of the surrogate
    delta = 0.5
    # the boundary 1/2 s^T F s = delta is an ellipse: axes from F's eigen-decomposition
    vals, vecs = np.linalg.eigh(F)
    radii = np.sqrt(2 * delta / vals)
    angle = np.degrees(np.arctan2(vecs[1, 0], vecs[0, 0]))
    x = np.linalg.solve(F, g)
    natural = np.sqrt(2 * delta / (x @ F @ x)) * x
    plain = np.sqrt(2 * delta / (g @ F @ g)) * g           # the gradient direction, on the boundary
    too_far = 2.2 * plain                                   # a fixed learning rate overshooting
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    ax.add_patch(Ellipse((0, 0), 2 * radii[0], 2 * radii[1], angle=angle, facecolor="C0",
                         alpha=0.12, edgecolor="C0", lw=1.5))
    ax.text(-0.18, -0.78, r"KL ball $\frac{1}{2} s^\top F s \leq \delta$", color="C0", fontsize=9)
    # contours of the linearized surrogate g^T s = c (lines orthogonal to g)
    t = np.linspace(-2, 2, 2)
    ortho = np.array([-g[1], g[0]]) / np.linalg.norm(g)
    for c in (-0.4, 0.0, 0.4, 0.8, natural @ g):
        base = c * g / (g @ g)
        pts = base[:, None] + ortho[:, None] * t
        ax.plot(pts[0], pts[1], color="0.75", lw=0.8, ls="--", zorder=0)
    arrow = dict(arrowstyle="-|>", mutation_scale=14, lw=2)
    ax.add_patch(FancyArrowPatch((0, 0), tuple(too_far), color="C3", **arrow))
    ax.add_patch(FancyArrowPatch((0, 0), tuple(plain), color="C1", **arrow))
    ax.add_patch(FancyArrowPatch((0, 0), tuple(natural), color="C2", **arrow))
    ax.text(*(too_far + [0.02, 0.04]), "learning rate times $g$:\nleaves the KL ball", color="C3",
            fontsize=9)
    ax.text(*(plain + [0.03, -0.12]), "$g$ scaled to the boundary", color="C1", fontsize=9)
    ax.text(*(natural + [-0.55, 0.1]), r"natural step $\sqrt{2\delta / x^\top F x}\;F^{-1}g$",
            color="C2", fontsize=9)
    ax.plot([0], [0], "ko", ms=4)
    ax.text(0.03, -0.1, r"$\theta_\mathrm{old}$", fontsize=10)
    ax.set_xlim(-0.9, 1.2)
    ax.set_ylim(-0.9, 1.4)
    ax.set_aspect("equal")
    ax.set_xlabel(r"parameter direction 1 (stiff: the policy reacts strongly)")
    ax.set_ylabel(r"parameter direction 2 (soft)")
    ax.set_title("Dashed: lines of equal linearized surrogate $g^\\top s$.\n"
                 "The natural step reaches the highest one inside the KL ball.", fontsize=9)
    fig.tight_layout()
    return fig


FIGURES = {
    "ppo_clip_objective.png": ppo_clip_figure,
    "gae_weights.png": gae_weights_figure,
    "autoreset_timeline.png": autoreset_timeline_figure,
    "trust_region.png": trust_region_figure,
}


def render(make) -> bytes:
    """The figure as PNG bytes, without the metadata that varies between runs."""
    with plt.rc_context(STYLE):
        fig = make()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
        plt.close(fig)
    return buffer.getvalue()


def pixels(png: bytes) -> np.ndarray:
    return plt.imread(io.BytesIO(png), format="png")


TOLERANCE = 2 / 255
"""largest per-channel difference that is still the same picture (anti-aliasing rounding)"""


def same_picture(old: np.ndarray, new: np.ndarray) -> bool:
    return old.shape == new.shape and bool(np.abs(old - new).max(initial=0.0) <= TOLERANCE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed figure differs from what would be drawn")
    parser.add_argument("--out-dir", type=Path, default=IMG, metavar="DIR",
                        help="where the PNGs live (default: docs/img)")
    args = parser.parse_args(argv)
    stale = []
    for name, make in FIGURES.items():
        path = args.out_dir / name
        png = render(make)
        if args.check:
            if not path.is_file():
                stale.append(f"{name} (missing)")
            else:
                old, new = pixels(path.read_bytes()), pixels(png)
                if not same_picture(old, new):
                    stale.append(name)
        else:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
            print(f"wrote {path}")
    if stale:
        print("figures out of date: " + ", ".join(stale) + "; run: python docs/figures.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
