"""Test helpers around the real control plane (llmops_sandbox.realkube starts it): the project's CRDs, the operator
as the Helm chart runs it, and pod templates through real admission."""
