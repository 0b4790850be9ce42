"""Suite-wide settings: no test may reach outside this machine."""

import os

os.environ.setdefault("LLMOPS_PRICING_FILE", "")
