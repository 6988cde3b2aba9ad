"""Rebuilds the SavedModels shipped in saved_models/ and their model cards.

    python saved_models/build.py [NAME ...]

Each entry trains with the `zoo` command on the embedded digits, then copies the exported
SavedModel to saved_models/NAME/1/ (the layout `tensorflow_model_server
--model_base_path=saved_models/NAME` serves) and writes saved_models/NAME/card.json and
MODEL_CARD.md from the run's metrics.json. tests/zoo/test_saved_models.py reloads each and checks
its card's held-out bits/dim.
"""

import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

SHIPPED = {
    "realnvp_digits": ["train", "realnvp", "--epochs", "30"],
    "realnvp_flat_digits": ["train", "realnvp_flat", "--epochs", "30"],
    # NICE's scaling starts at the identity and Adam moves it ~lr per step: it needs more steps.
    "nice_digits": [
        "train",
        "nice",
        "--epochs",
        "150",
        "--learning-rate",
        "3e-3",
        "--set",
        "hidden_units=(256, 256, 256)",
    ],
}

CARD = """# {name}

{model} trained on the embedded scikit-learn 8x8 digits (17 levels per pixel), as a TF Serving
SavedModel (`1/`).

| | |
|---|---|
| command | `{command}` |
| training data | digits `train` split (1,500 images), dequantized `(x + u) / 17` |
| held-out data | digits `test` split (297 images), dequantization noise seeded with {seed} |
| held-out bits/dim | {bits:.4f} (the uniform density scores log2 17 = 4.0875) |
| held-out log-likelihood | {nats:.2f} nats per image of the dequantized data in [0, 1)^64 |
| weights | {weights:,} |
| training | {epochs} epochs, {seconds} s on {cores} CPU cores |
| versions | TensorFlow {tf}, Keras {keras}, TFP {tfp} |

Signatures (`saved_model_cli show --dir 1 --all`): `log_prob` and `serving_default`
(`images` [batch, 8, 8, 1] float32 in [0, 1] -> `log_prob`, `bits_per_dim`), `sample` (`z` ->
`images`, clipped to [0, 1]; draw `z` from the prior, times a temperature), `encode` (`images` ->
`z`), `decode` (`z` -> `images`). Latent shape: {latent}; prior: standard {prior}.
"""


def build(name, argv):
    from zoo import cli

    with tempfile.TemporaryDirectory() as out:
        metrics = cli.run([*argv, "--out", out])
        target = os.path.join(HERE, name)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        shutil.copytree(metrics["export"], os.path.join(target, "1"))
        config = metrics["config"]
        card = {
            "name": name,
            "model": metrics["model"],
            "command": "zoo " + " ".join(argv),
            "dataset": metrics["dataset"],
            "test_split": metrics["test_split"],
            "dequantize_seed": 0,
            "num_levels": metrics["num_levels"],
            "image_shape": metrics["image_shape"],
            "held_out_bits_per_dim": metrics["held_out_bits_per_dim"],
            "held_out_log_likelihood_nats": metrics["held_out_log_likelihood_nats"],
            "weights": metrics["weights"],
            "epochs": metrics["epochs_run"],
            "train_seconds": metrics["train_seconds"],
            "config": config,
            "versions": metrics["versions"],
        }
    with open(os.path.join(target, "card.json"), "w") as f:
        json.dump(card, f, indent=2)
    prior = config.get("prior", "normal")
    with open(os.path.join(target, "MODEL_CARD.md"), "w") as f:
        f.write(
            CARD.format(
                name=name,
                model=metrics["model"],
                command=card["command"],
                seed=0,
                bits=card["held_out_bits_per_dim"],
                nats=card["held_out_log_likelihood_nats"],
                weights=card["weights"],
                epochs=card["epochs"],
                seconds=card["train_seconds"],
                cores=os.cpu_count(),
                tf=card["versions"]["tensorflow"],
                keras=card["versions"]["keras"],
                tfp=card["versions"]["tensorflow_probability"],
                latent="same as the image" if metrics["model"] == "realnvp" else "[64]",
                prior=prior,
            )
        )
    print(f"{name}: held-out {card['held_out_bits_per_dim']} bits/dim -> {target}")


def main(names):
    for name in names or SHIPPED:
        build(name, SHIPPED[name])


if __name__ == "__main__":
    main(sys.argv[1:])
