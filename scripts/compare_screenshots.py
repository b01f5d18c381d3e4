"""Screenshots of View ▸ Compare with the pixel VAE (docs/screenshots/compare_*.png).

    xvfb-run -s "-screen 0 1024x640x24" .venv/bin/python scripts/compare_screenshots.py PICTURE [MODEL]

Opens the model (default: the bundled one) beside its pixel-VAE twin, reconstructs the picture's faces
(compare_reconstruct.png) and edits its first face with Smiling +1.5 and Eyeglasses +1.5 (compare_attributes.png).
--root-shot also saves the whole X screen (`import -window root`). Settings go to a temporary file.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.app import launch  # noqa: E402
from explorer.settings import SETTINGS_ENV  # noqa: E402
from scripts.quality_screenshots import parse_arguments, save_view, wait_until  # noqa: E402

EDITS = {"Smiling": 1.5, "Eyeglasses": 1.5}


def main() -> int:
    args = parse_arguments(picture=True, size="1024x640")
    os.environ[SETTINGS_ENV] = str(Path(tempfile.mkdtemp()) / "settings.ini")
    picture = args.picture

    def save(name: str) -> None:
        save_view(app, window, Path(args.out) / f"compare_{name}.png", args.root_shot)

    app, window, _ = launch([args.model, "--panel", "reconstruct", "--images", str(picture)])
    window.resize(*map(int, args.size.split("x")))
    window.show()
    wait_until(app, lambda: window.selection.model is not None and not window.loading)
    window.compare_twin_action.trigger()
    wait_until(app, lambda: window.selection.compare_model is not None)
    recon = window.panels["reconstruct"]
    wait_until(app, lambda: recon.items and all(i.result is not None and i.result.compared is not None
                                                for i in recon.items))
    save("reconstruct")
    attributes = window.panels["attributes"]
    window.use_pictures([picture], "attributes")
    wait_until(app, lambda: attributes.face is not None and attributes.face.source == str(picture))
    window.show_panel("attributes")
    attributes.set_strengths(EDITS)
    attributes.flush()
    save("attributes")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
