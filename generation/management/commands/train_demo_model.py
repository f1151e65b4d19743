"""`manage.py train_demo_model --seed N --out DIR [--ship]`: train the demo model on the
procedural world (generation/engine/demo_training.py). A maintainer's one-time job (67
minutes on the shared 2-core CPU, in two runs: docs/performance.md, "The demo model");
`--ship` then saves it as the committed demo model (generation/engine/demo_weights/, fp16,
with SHA256SUMS), which `generation.engine.demo.install_demo_model` installs. `--ship-only`
ships a folder trained before; `--continue-from` trains a trained folder's UNet on.
Nothing here runs at `make run` or in CI."""

from pathlib import Path

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Train the demo model on the procedural shapes world (deterministic for a seed)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, required=True,
                            help="The folder the trained pipeline is saved to (diffusers layout).")
        parser.add_argument("--ship", action="store_true",
                            help="Then save it as the committed demo model (demo_weights/).")
        parser.add_argument("--ship-only", action="store_true",
                            help="Do not train: ship the pipeline already in --out.")
        parser.add_argument("--continue-from", type=Path, default=None,
                            help="Train the UNet and text encoder of this trained folder on "
                            "(--unet-steps more, batches drawn from --seed), into --out.")
        parser.add_argument("--pictures-seed", type=int, default=0,
                            help="With --continue-from: the first run's seed (its pictures).")
        parser.add_argument("--unet-lr", type=float, default=None)
        parser.add_argument("--vae-steps", type=int, default=None)
        parser.add_argument("--unet-steps", type=int, default=None)
        parser.add_argument("--pictures", type=int, default=None)
        parser.add_argument("--threads", type=int, default=None)
        parser.add_argument("--high-noise", type=float, default=None,
                            help="Share of each batch's timesteps drawn from the noisiest "
                            "(--high-noise-from to 999): where only the caption says where "
                            "the shape goes.")
        parser.add_argument("--high-noise-from", type=int, default=None)
        parser.add_argument("--terminal-signal", type=float, default=None,
                            help="The picture's share of the noisiest latent (v-prediction "
                            "on SD 1.5's betas rescaled to it; default 0.01). 0 or less: "
                            "SD 1.5's own schedule with epsilon prediction.")
        parser.add_argument("--vae-from", default=None,
                            help="Take the VAE of this trained folder (e.g. "
                            "generation/engine/demo_weights) instead of training one.")
        parser.add_argument("--blob-noise", type=float, default=None,
                            help="Low-frequency noise added in training (hides where the "
                            "shape is at the noisiest steps, so the caption must say it).")

    def handle(self, *args, seed, out, ship=False, ship_only=False, continue_from=None,
               **options):
        from dataclasses import replace

        from generation.engine.demo import DEMO_WEIGHTS, ship_weights
        from generation.engine.demo_training import (
            TrainConfig,
            continue_demo_model,
            train_demo_model,
        )

        if not ship_only:
            config = replace(TrainConfig(seed=seed), **{
                key: value for key in ("vae_steps", "unet_steps", "pictures", "threads",
                                       "pictures_seed", "unet_lr", "high_noise",
                                       "high_noise_from", "blob_noise", "vae_from")
                if (value := options.get(key)) is not None})
            if (signal := options.get("terminal_signal")) is not None:
                config = replace(config, terminal_signal=signal if signal > 0 else None)

            def log(line):
                self.stdout.write(line)
                self.stdout.flush()

            if continue_from is not None:
                figures = continue_demo_model(continue_from, out, config, log)
            else:
                figures = train_demo_model(out, config, log)
            self.stdout.write(self.style.SUCCESS(
                f"Trained the demo model into {out} in {figures['seconds']:.0f} s."))
        if ship or ship_only:
            sums = ship_weights(out)
            size = sum((DEMO_WEIGHTS / name).stat().st_size for name in sums)
            self.stdout.write(self.style.SUCCESS(
                f"Shipped {len(sums)} files ({size / 1e6:.1f} MB) to {DEMO_WEIGHTS}."))
