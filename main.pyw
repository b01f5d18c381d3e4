"""Double-click start on Windows (pythonw: no console window)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from explorer.app import main  # noqa: E402

sys.exit(main())
