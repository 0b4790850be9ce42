PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One environment for the suite and the demo: the engines run for real in both (about 5 minutes to install).
EXTRAS ?= dev,train,gpu,vector,serving,features

.PHONY: venv test kube crds render demo clean lint

$(BIN)/llmops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $(BIN)/llmops

venv: $(BIN)/llmops

## make test: create the environment, build or reuse the real control plane, and run the whole suite
test: venv kube
	$(BIN)/pytest -q

## make kube: build etcd + kube-apiserver + kube-controller-manager and the newest KubeRay operator from Go modules,
## once per machine (cached under ${LLMOPS_CACHE:-~/.cache/llmops}; about 10-15 minutes cold on 2 cores)
kube:
	hack/kube/build.sh

## make crds: regenerate crds/ and the chart's copies from the API models
crds: venv
	$(BIN)/llmops crds

## make render: preview the children of every example without a cluster
render: venv
	$(BIN)/llmops render -f manifests/examples/

## make demo: the main command: the sandbox with every example applied and reconciled (Ctrl-C stops it)
demo: venv
	$(BIN)/llmops sandbox --apply manifests/examples/ --claim llmops-data=manifests/examples/data \
		--claim llmops-docs=docs --until-settled

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
