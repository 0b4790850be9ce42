PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev

.PHONY: venv test crds render demo clean lint

$(BIN)/llmops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $(BIN)/llmops

venv: $(BIN)/llmops

## make test: create the environment and run the whole suite
test: venv
	$(BIN)/pytest -q

## make crds: regenerate crds/ and the chart's copies from the API models
crds: venv
	$(BIN)/llmops crds

## make render: preview the children of every example without a cluster
render: venv
	$(BIN)/llmops render -f manifests/examples/

## make demo: the main command: preview every example's children (the sandbox replaces it once it lands)
demo: venv
	$(BIN)/llmops render -f manifests/examples/

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
