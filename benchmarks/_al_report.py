"""Tables, verdicts against the targets and the figure of ``benchmarks/active_learning.py``."""

from __future__ import annotations

import platform
from datetime import date

import numpy as np

#: Colours of the peers in the figure: tab10 without its red (cluster-EGL) and black (random).
PALETTE = ["C0", "C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9", "navy"]


def mean_curve(runs):
    arr = np.array(runs, dtype=float)  # (seeds, points, 2)
    return arr[0, :, 0], arr[:, :, 1].mean(0), arr[:, :, 1].std(0)


def labels_to_reach(n, curve, target):
    """Labels at which the mean curve first reaches ``target`` (linear interpolation)."""
    if curve[0] <= target:
        return float(n[0])
    for i in range(1, len(n)):
        if curve[i] <= target:
            frac = (curve[i - 1] - target) / (curve[i - 1] - curve[i])
            return float(n[i - 1] + frac * (n[i] - n[i - 1]))
    return None


def paired_rows(results, problems):
    """Per problem and budget: cluster-EGL minus random, paired by seed (mean +- its standard
    error) and the seeds where cluster-EGL is lower (every strategy of a seed starts from the
    same rows and model, so the seed-to-seed spread of the start cancels)."""
    rows = []
    for key, res in results.items():
        ours = np.array(res["runs"]["cluster-EGL"], dtype=float)
        rand = np.array(res["runs"]["random"], dtype=float)
        diff = ours[:, 1:, 1] - rand[:, 1:, 1]
        se = diff.std(0, ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.zeros(diff.shape[1])
        cells = [
            f"{int(n)}: {d:+.3f} +- {e:.3f} ({w}/{len(diff)})"
            for n, d, e, w in zip(ours[0, 1:, 0], diff.mean(0), se, (diff < 0).sum(0))
        ]
        rows.append(f"| {problems[key][0]} | " + "; ".join(cells) + " |")
    return rows


def peer_names(results, ours_names):
    """The strategies outside sk_mtbnn that any problem of ``results`` ran."""
    names = (m for res in results.values() for m in res["runs"] if m not in ours_names)
    return list(dict.fromkeys(names))


def verdicts(results, problems, ours_names):
    rows, counts = [], {"every budget": 0, "0.7x labels": 0, "best peer": 0}
    for key, res in results.items():
        runs = res["runs"]
        n, ours, _ = mean_curve(runs["cluster-EGL"])
        _, rand, _ = mean_curve(runs["random"])
        worse = [(int(k), a, b) for k, a, b in zip(n[1:], ours[1:], rand[1:]) if a > b]
        reach = labels_to_reach(n, ours, rand[-1])
        ratio = None if reach is None else reach / n[-1]
        peers = {m: mean_curve(r)[1][-1] for m, r in runs.items() if m not in ours_names}
        best = min(peers, key=peers.get)
        trivial = rand[-1] >= rand[0]  # random's final RMSE is no better than the start
        ok = (
            not worse,
            ratio is not None and ratio <= 0.7 and not trivial,
            ours[-1] <= peers[best],
        )
        for name, good in zip(counts, ok):
            counts[name] += int(good)
        worse_txt = (
            "yes"
            if not worse
            else "no: " + ", ".join(f"{k} ({a:.3f} vs {b:.3f})" for k, a, b in worse)
        )
        reach_txt = "not reached" if reach is None else f"{reach:.0f} of {n[-1]:.0f} ({ratio:.2f}x)"
        if trivial:
            reach_txt += "; trivially: random ends no better than the shared start"
        finals = sorted([*peers.values(), ours[-1]])
        rank = f"rank {finals.index(ours[-1]) + 1} of {len(finals)}"
        rows.append(
            f"| {problems[key][0]} | {worse_txt} | {reach_txt} | {ours[-1]:.3f} vs {best} "
            f"{peers[best]:.3f}: {'yes' if ok[2] else 'no'} ({rank}) |"
        )
    return rows, counts


def write_report(
    results,
    seeds,
    timing,
    command,
    run,
    *,
    problems,
    model,
    ours_names,
    root,
    report,
    figure,
    other=None,
    more=None,
):
    """Write the markdown ``report`` and the learning curves ``figure``; ``model`` describes
    the refitted model (``SparseMultiTaskBNNRegressor(...)``); ``other``: ``(title, results)``
    of another model's saved runs, compared side by side at the final budget; ``more``:
    ``(title, results)`` pairs of runs of a few strategies with more seeds (``--tag``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    lines = [
        "# Active learning curves\n",
        f"Measured {date.today().isoformat()} on {platform.machine()}, one torch thread, "
        f"{seeds} seeds, by `{command}`. Test RMSE in units of the test standard deviation, "
        "averaged over the scored tasks, mean +- standard deviation over the seeds. Model "
        f"refitted after every query: `{model}`. Labelled "
        "rows at the start + queries x rows per query: "
        + "; ".join(f"{problems[k][0]} {v[1]} + {v[3]} x {v[2]}" for k, v in problems.items())
        + ". Every strategy of a seed starts from the same rows and the same fitted model. "
        "Peers (scikit-activeml 1.0, bmdal-reg 3.0) and how they are adapted to several tasks: "
        "the docstrings of `benchmarks/active_learning.py` and `benchmarks/_al_peers.py`.\n",
    ]
    keys = list(results)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    axes = axes.ravel()
    for ax, key in zip(axes, keys):
        runs = results[key]["runs"]
        n0 = mean_curve(runs["random"])[0]
        mid = int(n0[len(n0) // 2])
        lines.append(
            f"\n## {problems[key][0]}\n\n| strategy | RMSE @ {mid} | RMSE @ {int(n0[-1])} "
            "| pick CPU s / query |\n| --- | ---: | ---: | ---: |"
        )
        n_queries = len(n0) - 1
        for name, curves in runs.items():
            n, mean, std = mean_curve(curves)
            i = list(n).index(mid)
            pick = results[key]["by_strategy"][name]["pick"] / (len(curves) * n_queries)
            lines.append(
                f"| {name} | {mean[i]:.3f} +- {std[i]:.3f} | {mean[-1]:.3f} +- {std[-1]:.3f} "
                f"| {pick:.2f} |"
            )
            others = [m for m in runs if m not in ("cluster-EGL", "random")]
            colour = PALETTE[others.index(name) % len(PALETTE)] if name in others else None
            style = dict(lw=1.0, alpha=0.8, ms=2.5, marker="o", color=colour)
            if name == "cluster-EGL":
                style.update(lw=2.6, color="C3", alpha=1.0, zorder=5)
            elif name == "random":
                style.update(lw=1.8, color="k", ls="--", alpha=1.0, zorder=4)
            ax.plot(n, mean, label=name, **style)
        ax.set_title(problems[key][0], fontsize=10)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_xlabel("labelled rows")
        ax.set_ylabel("test RMSE / std")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[len(keys) :]:
        ax.axis("off")
    axes[-1].legend(handles, labels, loc="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(figure, dpi=100)

    rows, counts = verdicts(results, problems, ours_names)
    k = len(results)
    lines += [
        "\n## Targets\n",
        "1. cluster-EGL (default options) has a mean RMSE <= random sampling's at every budget "
        f"on every problem: **{'met' if counts['every budget'] == k else 'not met'}** "
        f"({counts['every budget']}/{k} problems).",
        "2. It reaches random's final mean RMSE with <= 0.7x the labels (linear interpolation "
        f"of its mean curve; not counted where random ends no better than the start) on at "
        "least 4 of 5 problems: **"
        f"{'met' if counts['0.7x labels'] >= 4 else 'not met'}** ({counts['0.7x labels']}/{k}).",
        "3. Its final mean RMSE is <= the best peer's (every strategy outside sk_mtbnn, random "
        f"included) on at least half of the problems: **"
        f"{'met' if 2 * counts['best peer'] >= k else 'not met'}** ({counts['best peer']}/{k}; "
        f"peers run: {', '.join(peer_names(results, ours_names))}).",
    ]
    if timing is not None:
        load = timing.get("load")
        lines.append(
            "4. Scoring a pool of 1,000,000 rows takes <= 10 s: **"
            f"{'met' if timing['cpu'] <= 10 else 'not met'}** on CPU time "
            f"({timing['cpu']:.1f} s CPU, one thread; {timing['wall']:.1f} s wall"
            + (f" at a load of {load:.0f}, waiting for a core" if load else "")
            + f"; {timing['what']})."
        )
    lines += [
        "\n| problem | <= random at every budget | labels to reach random's final RMSE "
        "| final RMSE vs best peer |\n| --- | --- | --- | --- |",
        *rows,
        "\nPaired by seed, cluster-EGL minus random at each budget (labels: mean difference "
        "+- its standard error over the seeds; in brackets the seeds where cluster-EGL is "
        "lower). A difference within about two standard errors of 0 is not a measured loss "
        "or gain.\n",
        "| problem | cluster-EGL - random |\n| --- | --- |",
        *paired_rows(results, problems),
    ]
    fits = sum(r["clock"]["fits"] for r in results.values())
    fit_s = sum(r["clock"]["fit"] for r in results.values())
    pick_s = sum(r["clock"]["pick"] for r in results.values())
    lines.append(
        f"\nCPU time: {fit_s:.0f} s in {fits} refits of the model ({fit_s / fits:.2f} s each), "
        f"{pick_s:.0f} s choosing rows (GP fits included)."
        + (
            f" The whole run took {run['wall'] / 60:.0f} min wall, {run['cpu'] / 60:.0f} min CPU."
            if run
            else ""
        )
    )
    if other is not None:
        lines += side_by_side(results, *other, problems)
    lines += run_records(results, problems)
    for title, extra in more or ():
        lines += more_seeds(title, extra, problems, ours_names)
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def side_by_side(results, title, other, problems):
    """Final mean RMSE of the strategies both runs have, this run's model against ``other``."""
    lines = [
        f"\n## Against {title}\n",
        "Final mean RMSE (largest budget), this model / the other one's saved runs "
        "(its seeds may differ).\n",
    ]
    for key, res in results.items():
        if key not in other:
            continue
        names = [m for m in res["runs"] if m in other[key]["runs"]]
        cells = []
        for m in names:
            ours, theirs = (mean_curve(r["runs"][m])[1][-1] for r in (res, other[key]))
            cells.append(f"{m} {ours:.3f} / {theirs:.3f}")
        lines.append(f"- {problems[key][0]}: " + "; ".join(cells))
    return lines


def run_records(results, problems):
    """The table of who ran each problem: seeds, date, commit, machine load, command."""
    records = [(key, res["run"]) for key, res in results.items() if "run" in res]
    if not records:
        return []
    lines = [
        "\n| problem | seeds | started | commit | load (1/5/15 min) at start -> end "
        "| wall min | command |\n| --- | ---: | --- | --- | --- | ---: | --- |"
    ]
    for key, r in records:
        load = "/".join(f"{x:.1f}" for x in r["load_start"])
        load += " -> " + "/".join(f"{x:.1f}" for x in r["load_end"])
        lines.append(
            f"| {problems[key][0]} | {results[key]['seeds']} | {r['date']} | "
            f"{r['commit'] or '?'} | {load} | {r['wall'] / 60:.1f} | `{r['command']}` |"
        )
        kept = r.get("kept")
        if kept:
            lines.append(
                f"| {problems[key][0]}: {', '.join(kept['strategies'])} kept from an "
                f"earlier run | {results[key]['seeds']} | {kept['date']} | "
                f"{kept['commit'] or '?'} | | {(kept['wall'] or 0) / 60:.1f} | "
                f"`{kept['command']}` |"
            )
    return lines


def more_seeds(title, results, problems, ours_names):
    """A run of a few strategies with more seeds: mean curves, verdicts, paired differences."""
    lines = [f"\n## {title}\n", "| problem | strategy | mean test RMSE at each budget |"]
    lines.append("| --- | --- | --- |")
    for key, res in results.items():
        for name, curves in res["runs"].items():
            n, mean, _ = mean_curve(curves)
            cells = ", ".join(f"{int(k)}: {m:.3f}" for k, m in zip(n, mean))
            lines.append(f"| {problems[key][0]} ({res['seeds']} seeds) | {name} | {cells} |")
    rows, _ = verdicts(results, problems, ours_names)
    lines += [
        "\n| problem | <= random at every budget | labels to reach random's final RMSE "
        "| final RMSE vs best of the others run |\n| --- | --- | --- | --- |",
        *rows,
        "\n| problem | cluster-EGL - random (paired by seed) |\n| --- | --- |",
        *paired_rows(results, problems),
    ]
    return lines + run_records(results, problems)
