"""kopf, imported without the Kubernetes client libraries it loads only to recognise their objects.

When `kubernetes`, `kubernetes_asyncio` or `pykube` is installed, importing kopf imports it too, so that handlers
may return that library's model objects. The operator talks to the API with its own client and never does; yet
where an extra brings the official client along, its import alone is about 35 MB of the operator's memory.
The libraries stay importable afterwards: they are hidden only while kopf is first imported.
"""

from __future__ import annotations

import sys
from types import ModuleType

CLIENT_LIBRARIES = ("kubernetes", "kubernetes_asyncio", "pykube")


def import_kopf() -> ModuleType:
    hidden = [name for name in CLIENT_LIBRARIES if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import kopf
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return kopf


kopf = import_kopf()
