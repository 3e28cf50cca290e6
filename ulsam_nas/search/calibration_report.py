"""What ``ulsam-nas calibrate`` writes: the calibration as text (the headline statistics, the
noise decomposition, one row per architecture), and calibration.md, .csv, .png and .json in a
report folder — never over a calibration that other settings made."""

from __future__ import annotations

from typing import Any

from ulsam_nas.errors import InvalidInput


def calibration_text(result: dict[str, Any]) -> str:
    """The calibration for people: the headline statistics and one row per architecture."""

    def fmt(entry: dict[str, Any]) -> str:
        value = entry["value"]
        if value is None:
            return "n/a"
        interval = (
            f" [{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]" if entry.get("ci_low") is not None else ""
        )
        return f"{value:+.2f}{interval}"

    proxy, high = result["proxy_fidelity"], result["high_fidelity"]
    ceiling = result["noise_ceiling"]["value"]
    sd = result["seed_sd"]
    needed = result["seeds_to_resolve_0.5_points"]
    overlap = result["top_k_overlap"]
    lines = [
        f"# Calibration of study {result['study'].removesuffix('-calibration')!r}",
        "",
        f"{result['architectures']} architectures; proxy {proxy['epochs']} epochs × {proxy['images']} "
        f"images on {len(result.get('proxy_seeds', result['seeds']))} seeds, higher fidelity "
        f"{high['epochs']} epochs × {high['images'] or 'all'} images on {len(result['seeds'])} seeds "
        "(paired: a seed initialises a candidate the same at both). Statistics compare "
        "per-architecture mean accuracies; intervals are 95% percentile bootstraps over architectures.",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| Kendall τ-b, proxy vs higher fidelity | {fmt(result['kendall_tau'])} |",
        f"| Spearman ρ, proxy vs higher fidelity | {fmt(result['spearman_rho'])} |",
        f"| Kendall τ-b, MACs alone vs higher fidelity | {fmt(result['baselines']['macs'])} |",
        f"| Kendall τ-b, params alone vs higher fidelity | {fmt(result['baselines']['params'])} |",
        f"| Kendall τ-b, {result['zero_cost']['name']} vs higher fidelity | "
        f"{fmt(result['zero_cost']['kendall_tau'])} |",
        f"| noise ceiling: τ-b between two seeds at the higher fidelity | {_number(ceiling, '+.2f')} |",
        f"| top-{overlap['k']} overlap | {_number(overlap['value'], '.2f')} |",
        f"| regret of the proxy's pick (points) | {_number(result['regret'], '.2f', 100)} |",
        f"| seed sd, proxy / higher fidelity (points) | {_number(sd['proxy'], '.2f', 100)} / "
        f"{_number(sd['high'], '.2f', 100)} |",
        f"| seeds per arm to resolve 0.5 points (80% power), proxy / higher | "
        f"{needed['proxy'] or 'n/a'} / {needed['high'] or 'n/a'} |",
    ]
    for width, entry in result["within_width"].items():
        lines.append(
            f"| within α {width} ({entry['architectures']} architectures): τ-b | "
            f"{_number(entry['kendall_tau'], '+.2f')} |"
        )
    for name, label in (("proxy", "proxy"), ("high", "higher fidelity")):
        noise = (result.get("noise") or {}).get(name)
        if noise:
            lines.append(
                f"| noise at the {label} (points): seed sd / its validation-sampling part / "
                f"paired-difference sd | {_number(noise['seed_sd'], '.2f', 100)} / "
                f"{_number(noise['validation_sampling_sd'], '.2f', 100)} / "
                f"{_number(noise['paired_difference_sd'], '.2f', 100)} |"
            )
    lines += [
        "",
        "| α | plan | MMACs | proxy accuracy | higher-fidelity accuracy | grad norm |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['width_mult']:g} | {row['plan'] or '(plain)'} | {row['macs'] / 1e6:.3f} | "
            f"{row['proxy_accuracy']:.4f} | {row['high_accuracy']:.4f} | {row['grad_norm']:.3g} |"
        )
    lines += [""] + [f"Note: {note}." for note in result["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def _number(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else format(value * scale, spec)


CALIBRATION_STAMP = "calibration.json"


def check_calibration_target(folder: str, settings: dict[str, Any]) -> None:
    """Refuse to replace a calibration that other settings made (a synthetic check must not
    overwrite a real measurement): one line naming ``--out``."""
    import json
    from pathlib import Path

    target = Path(folder)
    stamp = target / CALIBRATION_STAMP
    if stamp.is_file():
        try:
            made = json.loads(stamp.read_text(encoding="utf-8")).get("settings")
        except (json.JSONDecodeError, AttributeError):
            made = None
        if made == settings:
            return
        why = "other settings" if made else "unknown settings"
    elif (target / "calibration.md").is_file():
        why = "unknown settings (an earlier version wrote it)"
    else:
        return
    raise InvalidInput(
        f"{target}/ holds a calibration made with {why}; give --out DIR for this one "
        f"(data {settings['data']}, {len(settings['architectures'])} architectures × "
        f"{settings['seeds']} seeds at the higher fidelity)"
    )


def write_calibration(result: dict[str, Any], folder: str) -> list[str]:
    """calibration.md, .csv, .png (proxy vs higher-fidelity accuracy) and .json (the whole result
    with its settings) into ``folder``, each written atomically; a calibration with other
    settings already there is refused, not replaced."""
    import io
    import json
    from pathlib import Path

    check_calibration_target(folder, result["settings"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from ulsam_nas.output import write_atomic

    target = Path(folder)
    frame = pd.DataFrame(
        [{k: v for k, v in row.items() if not k.endswith("accuracies")} for row in result["rows"]]
    )
    paths = [
        target / name for name in ("calibration.md", "calibration.csv", "calibration.png", CALIBRATION_STAMP)
    ]
    figure, axes = plt.subplots(figsize=(5.5, 4.2), dpi=120)
    for width, group in frame.groupby("width_mult"):
        axes.scatter(group["proxy_accuracy"] * 100, group["high_accuracy"] * 100, label=f"α {width:g}", s=28)
    low, high = result["proxy_fidelity"], result["high_fidelity"]
    axes.set_xlabel(f"proxy accuracy (%): {low['epochs']} epochs × {low['images']} images")
    axes.set_ylabel(f"accuracy (%): {high['epochs']} epochs × {high['images']} images")
    tau = _number(result["kendall_tau"]["value"], "+.2f")
    axes.set_title(f"Proxy vs higher fidelity, per-architecture means (τ-b {tau})", fontsize=9)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    plt.close(figure)
    write_atomic(paths[0], calibration_text(result))
    write_atomic(paths[1], frame.to_csv(index=False))
    write_atomic(paths[2], image.getvalue())
    write_atomic(paths[3], json.dumps(result, indent=2, default=float) + "\n")
    return [str(p) for p in paths]
