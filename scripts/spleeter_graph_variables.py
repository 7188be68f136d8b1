"""Builds Spleeter's own predict graph (the `spleeter` package, TensorFlow) for its 2-, 4- and 5-stem
configurations and writes what the TensorFlow-free port is tested against:

* tests/fixtures/spleeter_graph_variables.json: every variable's name and shape, in creation order;
* tests/fixtures/spleeter_graph_outputs.npz: the graph's separated waveforms for a fixed input with the
  deterministic random weights of `engines/spleeter_layout.random_tensors` (4 and 5 stems; the graph
  built with T = 64 frames per segment instead of 512, the port's streaming size), so the port's ELU
  and softmax variants are checked number for number against TensorFlow;
* with --tf-checkpoint DIR, a TensorFlow-written checkpoint (tf.compat.v1.train.Saver) of the 4-stem
  graph with those weights, for checking the reader on TF's own output (~160 MB; not committed).

It never runs in the project's environment. Regenerate in a throwaway venv (Python <= 3.11):

    python3.11 -m venv /tmp/spleeter-venv && /tmp/spleeter-venv/bin/pip install spleeter==2.4.2
    /tmp/spleeter-venv/bin/python scripts/spleeter_graph_variables.py [--tf-checkpoint /tmp/tf4stems]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from spleeter.model import EstimatorSpecBuilder
from spleeter.utils.configuration import load_configuration

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CONFIGS = {"2stems": 2, "4stems": 4, "5stems": 5}
PARITY = ("4stems", "5stems")
PARITY_SEED = 17  # random_tensors' seed; the test uses the same
PARITY_SAMPLES = 2048
PARITY_FRAMES = 64  # T for the parity graph: spleeter's code at the port's streaming size, 8x cheaper than 512


def _layout():
    spec = importlib.util.spec_from_file_location("spleeter_layout", ROOT / "engines" / "spleeter_layout.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def parity_input() -> np.ndarray:
    """The fixed input, [samples, 2] as spleeter takes it (the test rebuilds it the same way)."""
    return (0.1 * np.random.default_rng(PARITY_SEED).standard_normal((PARITY_SAMPLES, 2))).astype(np.float32)


def listing_json(listing: dict[str, list], tf_version: str) -> str:
    """One variable per line, so a diff of the fixture reads as a diff of the graph."""
    graphs = ",\n".join(f'"{config}": [\n' + ",\n".join(json.dumps(v) for v in variables) + "\n]"
                         for config, variables in listing.items())
    return f'{{"spleeter": "2.4.2", "tensorflow": "{tf_version}", "graphs": {{\n{graphs}\n}}}}\n'


def _predict_graph(params: dict):
    """Spleeter's predict graph in the current TF graph: (waveform placeholder, outputs, variables)."""
    waveform = tf.compat.v1.placeholder(tf.float32, shape=(None, 2), name="waveform")
    outputs = EstimatorSpecBuilder({"waveform": waveform}, params).outputs
    return waveform, outputs, tf.compat.v1.global_variables()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf-checkpoint", type=Path, help="also save the 4-stem graph's checkpoint here")
    args = parser.parse_args()
    tf.compat.v1.disable_eager_execution()
    layout = _layout()
    listing: dict[str, list] = {}
    outputs: dict[str, np.ndarray] = {}
    for config, instruments in CONFIGS.items():
        params = load_configuration(f"spleeter:{config}")
        with tf.Graph().as_default():
            listing[config] = [[v.op.name, v.shape.as_list()] for v in _predict_graph(params)[2]]
        if config not in PARITY:
            continue
        with tf.Graph().as_default():
            waveform, predictions, variables = _predict_graph({**params, "T": PARITY_FRAMES})
            values = layout.random_tensors(instruments, PARITY_SEED)
            step = tf.compat.v1.train.get_or_create_global_step()
            with tf.compat.v1.Session() as session:
                for v in variables:
                    v.load(values[v.op.name], session)
                step.load(0, session)
                result = session.run(predictions, {waveform: parity_input()})
                outputs[config] = np.stack([result[name].T for name in params["instrument_list"]])
                if args.tf_checkpoint and config == "4stems":
                    args.tf_checkpoint.mkdir(parents=True, exist_ok=True)
                    tf.compat.v1.train.Saver().save(session, str(args.tf_checkpoint / "model"))
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "spleeter_graph_variables.json").write_text(listing_json(listing, tf.__version__))
    np.savez_compressed(FIXTURES / "spleeter_graph_outputs.npz", **outputs)


if __name__ == "__main__":
    main()
