"""Entrypoints that run inside the jobs the operator creates (Ray jobs, batch Jobs).

They import engines (torch, Ray, DeepSpeed, peft, pymilvus, feast) that the control plane never
imports; each needs its extra installed in the runtime image.
"""
