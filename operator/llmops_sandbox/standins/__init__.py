"""Local stand-ins for the controllers a cluster would run (Job controller, KubeRay, KServe)."""
