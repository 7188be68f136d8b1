"""Intent parser benchmark on the evaluation set (control/intent/eval_set.jsonl): exact-match accuracy,
rejection precision/recall, wrong actions on the reject set, and parse time (median, p95) for the
grammar path and each semantic path, in one process so the ratios compare like with like.

    stemd bench intent [--repeat 5] [--clap PATH] [--json out.json] [--show-heldout]

Rows marked "split": "heldout" were kept out of tuning: their accuracy is reported per path
(`dev` / `heldout` columns), their misses only with --show-heldout.

Paths: "grammar" = parse() alone; "minilm" / "clap" = IntentParser with that semantic layer (the
grammar first, the layer only for clauses it cannot read). The semantic rows' times are reported
separately: they are the ones that pay for an embedding. CLAP runs when a checkpoint is found
([intent] clap_path via --config, --clap, or `stemd models fetch clap`'s folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

from stemd.config import load_config
from stemd.control.intent import IntentParser, parse
from stemd.control.intent.clap import find_checkpoint
from stemd.control.intent.evaluation import HELDOUT, Score, evaluate, load_eval_set, split_of


def run(name: str, parse_fn, rows, repeat: int, show_heldout: bool = False) -> dict:
    score: Score = evaluate(parse_fn, rows)
    for _ in range(repeat - 1):  # accuracy is deterministic; repeats only steady the timings
        score.times_ms += evaluate(parse_fn, rows).times_ms
    semantic_rows = [r for r in rows if r["layer"] == "semantic"]
    out = {"path": name, **score.summary()}
    out["semantic_rows_exact"] = round(evaluate(parse_fn, semantic_rows).accuracy, 4)
    grammar_rows = [r for r in rows if r["layer"] == "grammar"]
    out["grammar_rows_exact"] = round(evaluate(parse_fn, grammar_rows).accuracy, 4)
    for split in ("dev", HELDOUT):
        part = evaluate(parse_fn, [r for r in rows if split_of(r) == split])
        out[f"{split}_rows"], out[f"{split}_exact"] = part.rows, round(part.accuracy, 4)
        out[f"{split}_wrong_on_reject"] = len(part.wrong_on_reject_set)
    timing = evaluate(parse_fn, semantic_rows)
    out["semantic_rows_ms_median"] = timing.summary()["parse_ms_median"]
    out["semantic_rows_ms_p95"] = timing.summary()["parse_ms_p95"]
    # The grammar path is not expected to read the semantic rows; list only what it should have got.
    own = {r["text"] for r in rows if (name != "grammar" or r["layer"] == "grammar")
           and (show_heldout or split_of(r) != HELDOUT)}
    out["misses"] = [{"text": t, "want": w, "got": g} for t, w, g in score.misses if t in own]
    return out


def table(results: list[dict], rows: int) -> str:
    head = (f"{'path':8} {'exact':>7} {'dev':>7} {'heldout':>7} {'grammar rows':>12} {'semantic rows':>13} "
            f"{'rej prec':>8} {'rej rec':>8} "
            f"{'wrong on rej':>12} {'ms med':>8} {'ms p95':>8} {'sem ms med':>10} {'vs grammar':>10}")
    lines = [f"intent parser on {rows} phrases", head, "-" * len(head)]
    base = results[0]["parse_ms_median"]
    for r in results:
        ratio = r["parse_ms_median"] / base if base else float("nan")
        lines.append(
            f"{r['path']:8} {r['exact_match']:7.1%} {r['dev_exact']:7.1%} {r['heldout_exact']:7.1%} "
            f"{r['grammar_rows_exact']:12.1%} {r['semantic_rows_exact']:13.1%} "
            f"{r['reject_precision']:8.1%} {r['reject_recall']:8.1%} {r['wrong_actions_on_reject_set']:12d} "
            f"{r['parse_ms_median']:8.3f} {r['parse_ms_p95']:8.3f} {r['semantic_rows_ms_median']:10.2f} {ratio:9.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stemd bench intent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes over the set for the timings")
    parser.add_argument("--config", help="config file ([intent] clap_path)")
    parser.add_argument("--clap", help="CLAP checkpoint folder (overrides the config)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--show-heldout", action="store_true",
                        help="also list the held-out split's misses (not while tuning the grammar)")
    args = parser.parse_args(argv)
    rows = load_eval_set()
    intent = load_config(args.config).intent
    if args.clap:
        intent = SimpleNamespace(**{**vars(intent), "clap_path": args.clap})

    results = [run("grammar", parse, rows, args.repeat, args.show_heldout)]
    layers = {}
    minilm = IntentParser(intent, semantic="minilm")
    minilm.parse("make the vocals vanish")  # load and calibrate outside the timing
    results.append(run("minilm", minilm.parse, rows, args.repeat, args.show_heldout))
    layers["minilm"] = minilm.status()["semantic"]
    folder, why = find_checkpoint(intent.clap_path)
    if folder is not None:
        clap = IntentParser(intent, semantic="clap")
        clap.parse("make the vocals vanish")
        results.append(run("clap", clap.parse, rows, args.repeat, args.show_heldout))
        layers["clap"] = clap.status()["semantic"]
    else:
        layers["clap"] = f"skipped: {why}"

    print(table(results, len(rows)))
    for name, status in layers.items():
        print(f"{name}: {status}")
    for r in results:
        for m in r["misses"]:
            print(f"  [{r['path']}] miss: {m['text']!r}: want {m['want']} got {m['got']}")
    report = {"rows": len(rows), "results": results, "layers": layers}
    print(json.dumps({**report, "results": [{k: v for k, v in r.items() if k != "misses"} for r in results]}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
