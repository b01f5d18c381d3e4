"""Start VAE-GAN Face Explorer: `python main.py [MODEL]` (see `python main.py --help`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from explorer.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
