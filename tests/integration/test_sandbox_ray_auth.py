"""The sandbox's local Ray head requires its token: the KubeRay stand-in and the jobs it runs have it, others do not.
Its files under /tmp go with it."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("ray")

from llmops_sandbox.localray import LocalRay  # noqa: E402

pytestmark = pytest.mark.integration

DRIVER = "python -c \"import ray; ray.init(); print('driver connected', int(ray.cluster_resources()['CPU']))\""


@pytest.mark.timeout(300)
def test_only_token_holders_reach_the_local_ray_head(tmp_path):
    from ray.job_submission import JobSubmissionClient

    ray = LocalRay(tmp_path, num_cpus=1)
    try:
        ray.launch()
        url = ray.wait_ready()
        with pytest.raises(Exception, match="(?i)auth|401|token"):
            JobSubmissionClient(url, headers={"Authorization": "Bearer not-the-token"}).list_jobs()
        client = JobSubmissionClient(url, headers=ray.headers)
        job = client.submit_job(entrypoint=DRIVER, entrypoint_num_cpus=0)
        deadline = time.monotonic() + 180
        while str(client.get_job_status(job)) not in ("SUCCEEDED", "FAILED", "STOPPED", "JobStatus.SUCCEEDED",
                                                       "JobStatus.FAILED", "JobStatus.STOPPED"):
            assert time.monotonic() < deadline, client.get_job_logs(job)
            time.sleep(1)
        logs = client.get_job_logs(job)
        assert "SUCCEEDED" in str(client.get_job_status(job)), logs
        assert "driver connected 1" in logs  # the driver joined the cluster with the token from its environment
        temp = ray.temp_dir
        assert temp is not None and any(temp.iterdir()), "Ray wrote nothing to its temp dir"
    finally:
        ray.stop()
    assert not temp.exists(), f"Ray's temp dir {temp} was left behind"
