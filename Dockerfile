# The operator image; the same image runs the job runtimes when built with their extras:
#   docker build -t llmops-operator .                          # control plane only
#   docker build --build-arg EXTRAS=train,gpu,serving -t llmops-runtime .   # gpu: Liger kernels, QLoRA
FROM python:3.11-slim AS base
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN if [ -n "$EXTRAS" ]; then pip install ".[${EXTRAS}]"; else pip install .; fi \
 && rm -rf /src
USER 65532:65532
ENTRYPOINT ["llmops"]
CMD ["run", "--all-namespaces"]
