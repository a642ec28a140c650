"""The demo's ``report.html``: what was found, in plain words, with every figure and table.

:func:`report_step` composes the sections from a :class:`~disagree.demo.DemoResult` and
writes them with :func:`disagree.demo.html.write_report`; every table shown is also a CSV in
the demo folder (linked from the page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree._io import write_table
from disagree.demo.html import Section, write_report
from disagree.demo.steps import Say
from disagree.model.contrasts import estimand_text

TINY_NOTE = (
    "NOTE: The group models here are 0.2-million-parameter language models trained for a few "
    "dozen steps on the simulated responses. They learn which phrases each group's pairs "
    "prefer, so they can reproduce a group difference that the wording of the responses "
    "carries (in the bundled survey, most of the groups' disagreement about single responses "
    "follows their wording: interaction_traits 0.8), but they say nothing about how a real "
    "instruction model would behave. Their intervals count three training seeds and two dozen "
    "held-out prompts. For real models: configs/gpu-figure2.yaml on a GPU, with several "
    "seeds.")
GAPS = (
    "Read the three rows of each comparison left to right. Survey ratings vs learned "
    "preferences is a gap of rating level against ranking: the survey row says how much "
    "higher one group rates responses overall, but a model trained on a group's pairs learns "
    "only which response that group prefers among a prompt's responses, so it can move only "
    "where the groups disagree about which response is best; the learned-preferences row is "
    "what a model that learned each group's posterior preferences perfectly would score (the "
    "same judge, the same held-out prompts), and it can differ from the survey in size and "
    "even in sign. Learned preferences vs trained models is a gap of learning: how much of "
    "that ceiling the trained models reached.")


def report_step(result: Any, step: Say, say: Say) -> Path:
    """Write ``report.html`` into the demo folder and return its path."""
    step("report: report.html")
    out = result.out
    sections = [data_section(result)]
    if result.fit is not None:
        sections += [model_section(result), interaction_section(result)]
    if result.pairs is not None:
        sections.append(pairs_section(result))
    if result.figure2 is not None:
        sections += figure2_sections(result)
    sections.append(Section("Files", [
        "Every table above is a CSV in this folder: describe/ (description and Figure 1), "
        "fit/ (posterior.nc, diagnostics.json, model.json), contrasts.csv, disagreement-*.csv, "
        "pairs/ (for TRL), train/ (a soft-target DPO run), figure2/ (runs/, scores.csv, "
        "figure2.csv, alignment.csv, advantage.csv and the figures)."]))
    lead = (f"{'Simulated default survey' if result.survey else result.table.source}: "
            f"{len(result.table.raters):,} raters, {len(result.table.long()):,} ratings, "
            f"{len(result.table.items):,} responses, {len(result.table.dimensions)} dimensions. "
            f"Made by `disagree demo` in {result.seconds:.0f} s.")
    path = write_report(out / "report.html", "disagree: who rates differently, and does it "
                        "carry into trained models?", lead, sections)
    say(f"    wrote {path}")
    return path


def data_section(result: Any) -> Section:
    """Figure 1 and the raw group differences."""
    folder = result.out / "describe"
    figures = [(folder / f"{name}.png", caption) for name, caption in (
        ("figure1_conditional", "Figure 1: how often a rating that is high (4 or 5) on the "
         "row's dimension is high on the column's too, over (rater, response) pairs rated on "
         "both (model-free)."),
        ("figure_group_differences", "Raw relative differences in the probability of a high "
         "rating (4 or 5), each group against the reference group."))
        if (folder / f"{name}.png").is_file()]
    return Section("The ratings", [
        "Each rater rated every response of a few prompts on each dimension (1 to 5). Before "
        "any model: how the dimensions go together (the paper's Figure 1), and how far each "
        "group's share of high ratings is from its reference group's."], figures)


def model_section(result: Any) -> Section:
    """Headline contrasts (with the truth when simulated) and diagnostics."""
    contrasts = result.contrasts
    rows = contrasts[contrasts["measure"] == "relative_pct"].copy()
    paragraphs = []
    if result.survey is not None:
        truth = {(c["dimension"], c["level"]): c["estimate"]
                 for c in result.survey.truth["contrasts"] if c["measure"] == "relative_pct"}
        rows["truth"] = [truth.get((d, lv), np.nan) for d, lv in zip(rows["dimension"],
                                                                     rows["level"], strict=True)]
        for dim, _, level in result.survey.headline():
            r = rows[(rows["dimension"] == dim) & (rows["level"] == level)].iloc[0]
            paragraphs.append(
                f"{level.capitalize()} raters' probability of rating {dim.replace('_', ' ')} "
                f"4 or 5 was {r.estimate:+.1f}% relative to {r.reference} raters (95% interval "
                f"{r.lower:+.1f}% to {r.upper:+.1f}%); the simulated truth is {r.truth:+.1f}%.")
    paragraphs.append("What each percentage estimates: "
                      + estimand_text(result.fit.spec.scale))
    diag = result.fit.diagnostics
    paragraphs.append(
        f"The joint Bayesian ordinal model (rater and response random effects, demographic "
        f"coefficients per dimension) sampled with {diag.get('sampler', 'nutpie')}: largest "
        f"R-hat {diag.get('rhat_max', float('nan')):.3f}, smallest bulk ESS "
        f"{diag.get('ess_bulk_min', float('nan')):.0f}, {diag.get('divergences', 0)} "
        f"divergences: diagnostics {'ok' if diag.get('ok') else 'NOT ok (see fit/)'}.")
    shown = rows.drop(columns=["measure"]).round(1)
    write_table(result.out / "contrasts_relative.csv", shown)
    return Section("Who rates differently: the model's contrasts", paragraphs, [],
                   [("contrasts_relative.csv", shown, "Relative difference in the probability "
                     "of a high rating, each level against the reference, 95% intervals")])


def interaction_section(result: Any) -> Section:
    """Group-by-item standard deviations and the items groups disagree on most."""
    post = result.fit.idata.posterior
    if "item_group_sd" not in post:
        return Section("Do groups disagree about which response is better?", [
            "This fit has no group-by-item interactions (fit with --interactions to ask)."])
    sd = post["item_group_sd"].stack(sample=("chain", "draw"))
    truth = result.survey.truth.get("interactions", {}) if result.survey else {}
    rows = [{"dimension": d, "factor": f, "mean": float(sd.sel(dimension=d, factor=f).mean()),
             "lower": float(sd.sel(dimension=d, factor=f).quantile(0.025)),
             "upper": float(sd.sel(dimension=d, factor=f).quantile(0.975)),
             "truth": truth.get(str(d), {}).get(str(f), 0.0) if result.survey else np.nan}
            for d, f in result.fit.spec.interaction_cells]
    table = pd.DataFrame(rows).round(3)
    write_table(result.out / "item_group_sd.csv", table)
    tables = [("item_group_sd.csv", table, "Standard deviation of the group-by-response "
               "deviations (logits) of each modelled (dimension, factor), posterior mean and "
               "95% interval")]
    for name, frame in (result.disagreement or {}).items():
        top = frame[frame["level"] != frame["reference"]].head(8)
        tables.append((name, top[["rank", "item_id", "prompt_id", "level", "reference",
                                  "p_high", "diff_pp", "diff_pp_lower", "diff_pp_upper",
                                  "p_order_differs_max"]].round(3),
                       "Responses the two groups rate most differently (difference in the "
                       "probability of a high rating, pp)"))
    return Section("Do groups disagree about which response is better?", [
        "Beyond rating higher or lower overall, each group may rank the responses differently. "
        "The model gives every response its own deviation per group level; a standard deviation "
        "clearly above zero means the groups disagree about which responses are better."],
        [], tables)


def pairs_section(result: Any) -> Section:
    """Soft pairs and the tiny soft-target DPO run."""
    weights = result.pairs.frame["weight"]
    return Section("Soft preference pairs for training", [
        f"{len(result.pairs):,} toxicity pairs of responses to the same prompt, each weighted "
        f"by the posterior probability that a rater, rating both, finds the chosen response "
        f"less toxic (weights {weights.min():.2f} to {weights.max():.2f}, median "
        f"{weights.median():.2f}), written to pairs/ for TRL; a tiny model trained on them "
        f"with soft-target DPO is in train/."])


def figure2_sections(result: Any) -> list[Section]:
    """Figure 2, the alignment matrices and the diagonal advantage, in words."""
    res = result.figure2
    frame = res.figure2
    words = [GAPS]
    for comparison in dict.fromkeys(frame["comparison"]):
        row = frame[frame["comparison"] == comparison].set_index("source")
        s, p, m = (row.loc[k] for k in ("survey", "preference", "model"))
        words.append(
            f"{comparison}: in the survey, {s['first']} raters' probability of a high rating "
            f"was {s.estimate:+.1f} pp {bounds(s)} against {s['second']} raters'. Models that "
            f"had learned each group's preferences perfectly would differ by "
            f"{p.estimate:+.1f} pp {bounds(p)}; the trained models ({int(m.seeds)} seeds "
            f"each) differ by {m.estimate:+.1f} pp {bounds(m)}: " + direction(p, m))
    sections = [Section("Figure 2: survey, learned preferences and group-trained models", [
        "For each comparison, tiny models were trained on each group's soft pairs (the same "
        "base model, settings and prompt split, one per training seed), and judged on held-out "
        "prompts by the fitted model's population label of the prompt's responses, each "
        "weighted by the model's probability that it is the best (the softmax of its implicit "
        "rewards), as the learned-preferences row weights them by the posterior probability "
        "that each is the group's favourite. Differences are first minus second."]
        + words, [(res.out / "figure2.png", "Figure 2: survey ratings (triangles), learned "
                   "preferences (squares) and trained models (circles), 95% intervals")],
        [("figure2/figure2.csv", frame.drop(columns=["judge"]), "Figure 2's numbers")])]
    adv = res.advantage
    lines = []
    for r in adv[adv["metric"] == "weighted_accuracy"].itertuples():
        on = "all held-out pairs" if r.view == "all" else "the pairs the two groups contest"
        lines.append(f"{r.comparison}, on {on}: each group's model agrees with its own group's "
                     f"preferences {r.estimate * 100:+.1f} points more than the other group's "
                     f"model does ({interval_words(r, 100)}).")
    figures = [(res.out / f"alignment-{d}.png", f"Group alignment matrix, {d.replace('_', ' ')}")
               for d in res.alignment["dimension"].unique()]
    sections.append(Section("The group alignment matrix", [
        "How often each model's preference between two held-out responses points the way each "
        "group's posterior preference does, weighted by how sure the group is (0.5 is chance; "
        "the un-tuned base model has no preference). The diagonal advantage asks whether a "
        "group's model represents its own group better than the other group's model does; "
        "most pairs are ordered alike by every group, so it is also given on the contested "
        "pairs (each pair weighted by how much the two groups' preference probabilities "
        "differ)."]
        + lines, figures,
        [("figure2/advantage.csv", adv, "Diagonal advantage per comparison")]))
    sections.append(Section("What tiny CPU models can and cannot show", [TINY_NOTE]))
    return sections


def bounds(row: Any) -> str:
    """``[lower, upper]`` in pp, or why there is none."""
    if not np.isfinite(row.lower):
        return "(no interval: fewer than 3 training seeds)"
    return f"[{row.lower:+.1f}, {row.upper:+.1f}]"


def interval_words(row: Any, scale: float = 1.0) -> str:
    """Say the 95% interval of ``row`` in words (scaled), or why there is none."""
    if not np.isfinite(row.lower):
        return "no interval: fewer than 3 training seeds"
    return f"95% interval {row.lower * scale:+.1f} to {row.upper * scale:+.1f}"


def direction(preference: Any, model: Any) -> str:
    """Say whether the models' difference points the preference row's way, in words."""
    if not np.isfinite(model.lower):
        return ("with fewer than 3 training seeds the training noise is unknown, so no "
                "difference is called distinguishable from zero.")
    if model.lower <= 0 <= model.upper:
        return "no difference distinguishable from zero (the interval includes 0)."
    same = np.sign(model.estimate) == np.sign(preference.estimate)
    return ("the direction of the learned preferences." if same
            else "the opposite direction to the learned preferences.")
