"""The quality targets of ``deltaz demo`` (:func:`quality_targets`): each ``{target, value, met}``, read off the
evaluation's ``scan = "all"`` rows; the demo's report and summary print them with ticks."""

from __future__ import annotations

from typing import Any

__all__ = ["quality_targets"]


def quality_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The demo's quality targets on the ``scan = "all"`` rows: each ``{target, value, met}``.

    * refined MAE ≤ ½ of the initial MAE;
    * refined MAE ≥ 20 % below the best classical single-view baseline (median, bilateral,
      joint bilateral, guided) and below geometric averaging;
    * refined consistency above the initial depth's, over the pixels the input has (``consistency_valid``, when
      the rows have it: a refiner that fills holes is otherwise scored on more, harder pixels than its input);
    * do no harm (when the rows have the do-no-harm figures, :data:`deltaz.engine.report.HARM_COLUMNS`):
      ``harm_pct`` ≤ 5 % and ``mae_good_mm`` no higher than the input's; the same two for the row
      ``deltaz+gate`` (the refiner behind the photometric gate) when it was scored;
    * for ``search+deltaz`` (the refiner after the multi-view candidate search) when it was scored: ≥ 20 % below
      the best classical baseline, below ``search`` alone, and the two do-no-harm targets.
    """
    overall = {r["method"]: r for r in rows if r["scan"] == "all"}
    if "deltaz" not in overall or "identity" not in overall:
        return []
    dz, init = overall["deltaz"], overall["identity"]
    targets = [{
        "target": "refined MAE <= 1/2 initial MAE",
        "value": f"{dz['mae_mm']:.2f} vs {init['mae_mm']:.2f} / 2 = {init['mae_mm'] / 2:.2f} mm",
        "met": dz["mae_mm"] <= 0.5 * init["mae_mm"],
    }]
    classical = [overall[m] for m in ("median", "bilateral", "joint_bilateral", "guided") if m in overall]
    if classical:
        best = min(classical, key=lambda r: r["mae_mm"])
        targets.append({
            "target": "refined MAE >= 20 % below the best classical baseline",
            "value": f"{dz['mae_mm']:.2f} vs 0.8 x {best['mae_mm']:.2f} ({best['method']}) "
                     f"= {0.8 * best['mae_mm']:.2f} mm",
            "met": dz["mae_mm"] <= 0.8 * best["mae_mm"],
        })
    if "geometric_averaging" in overall:
        ga = overall["geometric_averaging"]
        targets.append({
            "target": "refined MAE below geometric averaging",
            "value": f"{dz['mae_mm']:.2f} vs {ga['mae_mm']:.2f} mm",
            "met": dz["mae_mm"] < ga["mae_mm"],
        })
    targets.append(_consistency_target(dz, init))
    gated = [{**t, "target": f"deltaz+gate: {t['target']}"} for t in
             (_harm_targets(overall["deltaz+gate"], init) if "deltaz+gate" in overall else [])]
    return targets + _harm_targets(dz, init) + gated + _search_targets(overall, classical)


def _consistency_target(dz: dict[str, Any], init: dict[str, Any]) -> dict[str, Any]:
    """Refined consistency above the input's, on the input's pixels when the rows say (each row's own beside it)."""
    own = f"{dz['consistency']:.1f} % vs {init['consistency']:.1f} %"
    if dz.get("consistency_valid") is None or init.get("consistency_valid") is None:
        return {"target": "refined consistency above the initial depth's", "value": own,
                "met": dz["consistency"] > init["consistency"]}
    return {"target": "refined consistency above the initial depth's (over the pixels the input has)",
            "value": f"{dz['consistency_valid']:.1f} % vs {init['consistency_valid']:.1f} % (over each row's own "
                     f"pixels: {own})",
            "met": dz["consistency_valid"] > init["consistency_valid"]}


def _search_targets(overall: dict[str, dict[str, Any]], classical: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of the row ``search+deltaz`` (none when it was not scored)."""
    if "search+deltaz" not in overall or "search" not in overall:
        return []
    sd, search = overall["search+deltaz"], overall["search"]
    targets = [{"target": "search+deltaz: refined MAE below the search alone",
                "value": f"{sd['mae_mm']:.2f} vs {search['mae_mm']:.2f} mm", "met": sd["mae_mm"] < search["mae_mm"]}]
    if classical:
        best = min(classical, key=lambda r: r["mae_mm"])
        targets.append({"target": "search+deltaz: refined MAE >= 20 % below the best classical baseline",
                        "value": f"{sd['mae_mm']:.2f} vs 0.8 x {best['mae_mm']:.2f} ({best['method']}) "
                                 f"= {0.8 * best['mae_mm']:.2f} mm",
                        "met": sd["mae_mm"] <= 0.8 * best["mae_mm"]})
    harm = _harm_targets(sd, overall["identity"])
    return targets + [{**t, "target": f"search+deltaz: {t['target']}"} for t in harm]


def _harm_targets(dz: dict[str, Any], init: dict[str, Any]) -> list[dict[str, Any]]:
    """The do-no-harm targets of :func:`quality_targets` (none when the rows lack the figures)."""
    targets = []
    if dz.get("harm_pct") is not None:
        targets.append({
            "target": "refined harm_pct <= 5 % (pixels made > 1 mm worse than the input)",
            "value": f"{dz['harm_pct']:.1f} %",
            "met": dz["harm_pct"] <= 5.0,
        })
    if dz.get("mae_good_mm") is not None and init.get("mae_good_mm") is not None:
        targets.append({
            "target": "refined mae_good_mm no higher than the input's (pixels the input has within 2 mm)",
            "value": f"{dz['mae_good_mm']:.2f} vs {init['mae_good_mm']:.2f} mm",
            "met": dz["mae_good_mm"] <= init["mae_good_mm"],
        })
    return targets
